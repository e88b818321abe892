//! Replacing the secrets of recorded inputs with stable placeholders.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_engine::{Input, Secret, StoredSession, unsigned_id_token};

/// Replaces secrets with placeholders, the same one for the same secret.
#[derive(Default)]
pub(super) struct Cleaner {
    seen: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
}

const SECRET_FIELDS: [(&str, &str); 6] = [
    ("access_token", "access-token"),
    // A derived token's answer (`{"token": …}`).
    ("token", "derived-token"),
    ("refresh_token", "refresh-token"),
    ("device_code", "device-code"),
    ("code", "code"),
    ("client_secret", "client-secret"),
];

impl Cleaner {
    pub(super) fn placeholder(&mut self, secret: &str, kind: &'static str) -> String {
        if let Some(known) = self.seen.get(secret) {
            return known.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let placeholder = format!("{kind}-{n}");
        self.seen.insert(secret.to_owned(), placeholder.clone());
        placeholder
    }

    /// The same claims, unsigned: the engine checks claims, not signatures.
    fn id_token(&mut self, token: &str) -> String {
        if let Some(known) = self.seen.get(token) {
            return known.clone();
        }
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let replaced = match claims {
            Some(claims) => unsigned_id_token(&claims),
            None => self.placeholder(token, "id-token"),
        };
        self.seen.insert(token.to_owned(), replaced.clone());
        replaced
    }

    fn secret(&mut self, secret: &Secret, kind: &'static str) -> Secret {
        Secret::new(self.placeholder(secret.expose(), kind))
    }

    fn session(&mut self, session: &StoredSession) -> StoredSession {
        StoredSession {
            access_token: self.secret(&session.access_token, "access-token"),
            refresh_token: session
                .refresh_token
                .as_ref()
                .map(|t| self.secret(t, "refresh-token")),
            id_token: session
                .id_token
                .as_ref()
                .map(|t| Secret::new(self.id_token(t.expose()))),
            ..session.clone()
        }
    }

    fn json(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match (key.as_str(), value.as_str()) {
                        ("id_token", Some(token)) => *value = Value::String(self.id_token(token)),
                        (name, Some(secret)) => {
                            if let Some((_, kind)) =
                                SECRET_FIELDS.iter().find(|(field, _)| *field == name)
                            {
                                *value = Value::String(self.placeholder(secret, kind));
                            }
                        }
                        _ => self.json(value),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            _ => {}
        }
    }

    fn body(&mut self, body: &str) -> String {
        if let Ok(mut value) = serde_json::from_str::<Value>(body) {
            self.json(&mut value);
            return value.to_string();
        }
        if body.contains('=') && !body.contains(' ') {
            let pairs: Vec<(String, String)> = form_pairs(body)
                .into_iter()
                .map(|(k, v)| {
                    let replaced = match SECRET_FIELDS.iter().find(|(field, _)| *field == k) {
                        Some((_, kind)) => self.placeholder(&v, kind),
                        None if k == "id_token" => self.id_token(&v),
                        None => v,
                    };
                    (k, replaced)
                })
                .collect();
            return url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
        }
        body.to_owned()
    }

    fn url(&mut self, url: &str) -> String {
        let Ok(mut parsed) = url::Url::parse(url) else {
            return url.to_owned();
        };
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let value = if k == "code" {
                    self.placeholder(&v, "code")
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        if !pairs.is_empty() {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        parsed.into()
    }

    pub(super) fn input(&mut self, input: &Input) -> Input {
        match input {
            Input::HttpResponse {
                id,
                status,
                headers,
                body,
            } => Input::HttpResponse {
                id: *id,
                status: *status,
                headers: headers.clone(),
                body: self.body(body),
            },
            Input::Callback { url } => Input::Callback { url: self.url(url) },
            Input::PastedCode { text } => {
                let text = text.trim();
                let cleaned = if text.contains("://") {
                    self.url(text)
                } else if let Some((code, state)) = text.split_once('#') {
                    format!("{}#{state}", self.placeholder(code, "code"))
                } else {
                    self.placeholder(text, "code")
                };
                Input::PastedCode { text: cleaned }
            }
            Input::SessionLoaded { session } => Input::SessionLoaded {
                session: session.as_ref().map(|s| self.session(s)),
            },
            Input::SessionLocked { session } => Input::SessionLocked {
                session: session.as_ref().map(|s| self.session(s)),
            },
            Input::TokenRejected {
                waiter,
                access_token,
            } => Input::TokenRejected {
                waiter: *waiter,
                access_token: self.secret(access_token, "access-token"),
            },
            other => other.clone(),
        }
    }
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
