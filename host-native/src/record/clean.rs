//! Replacing the secrets and personal data of recorded inputs with stable placeholders.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_engine::{
    Identity, Input, Secret, SigningKey, StoredSession, signed_id_token, transcript_key_set,
};

/// Replaces secrets and personal claims with placeholders, the same one for the same value,
/// and the values the engine derived from the live seed (`state`, `nonce`) with the ones
/// it derives from the transcript's seed.
#[derive(Default)]
pub(super) struct Cleaner {
    seen: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
    /// Live `state`/`nonce` → what the engine derives from the transcript's seed.
    derived: HashMap<String, String>,
}

/// Personal claims (OIDC Core §5.1) in ID tokens, UserInfo answers and stored identities,
/// with their placeholders' kind. `sub` becomes `subject-1`, the same everywhere, so the
/// engine's subject checks replay the same way.
const PERSONAL_CLAIMS: [(&str, &str); 14] = [
    ("sub", "subject"),
    ("email", "email"),
    ("name", "name"),
    ("given_name", "given-name"),
    ("family_name", "family-name"),
    ("middle_name", "middle-name"),
    ("nickname", "nickname"),
    ("preferred_username", "username"),
    ("picture", "picture"),
    ("profile", "profile"),
    ("website", "website"),
    ("phone_number", "phone-number"),
    ("address", "address"),
    ("birthdate", "birthdate"),
];

/// Response headers that are not kept: cookies (a provider's login session) and
/// credentials.
fn dropped_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("cookie") || name == "authorization" || name == "proxy-authorization"
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
    /// A cleaner that also rewrites the live `state`s and `nonce`s in `derived`.
    pub(super) fn with_derived(derived: HashMap<String, String>) -> Self {
        Self {
            derived,
            ..Self::default()
        }
    }

    fn derived(&self, value: &str) -> String {
        self.derived
            .get(value)
            .cloned()
            .unwrap_or_else(|| value.to_owned())
    }

    /// A personal value's placeholder, of the claim's shape (an e-mail address, a URL).
    fn personal(&mut self, value: &str, kind: &'static str) -> String {
        let key = format!("\0{kind}\0{value}");
        if let Some(known) = self.seen.get(&key) {
            return known.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let placeholder = match kind {
            "email" => format!("{kind}-{n}@example.invalid"),
            "picture" | "profile" | "website" => format!("https://example.invalid/{kind}-{n}"),
            _ => format!("{kind}-{n}"),
        };
        self.seen.insert(key, placeholder.clone());
        placeholder
    }

    /// Replaces the value of a personal claim in place; `false` when `name` is not one.
    fn personal_claim(&mut self, name: &str, value: &mut Value) -> bool {
        let Some((_, kind)) = PERSONAL_CLAIMS.iter().find(|(claim, _)| *claim == name) else {
            return false;
        };
        *value = match &*value {
            Value::String(text) => Value::String(self.personal(text, kind)),
            Value::Null => Value::Null,
            // An address is an object: keep the shape, drop its parts.
            other => {
                let placeholder = self.personal(&other.to_string(), kind);
                if other.is_object() {
                    serde_json::json!({ "formatted": placeholder })
                } else {
                    Value::String(placeholder)
                }
            }
        };
        true
    }

    fn identity(&mut self, identity: &Identity) -> Identity {
        let mut one = |value: &Option<String>, kind| value.as_ref().map(|v| self.personal(v, kind));
        Identity {
            subject: one(&identity.subject, "subject"),
            email: one(&identity.email, "email"),
            name: one(&identity.name, "name"),
            preferred_username: one(&identity.preferred_username, "username"),
            ..identity.clone()
        }
    }

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

    /// The same claims, personal ones replaced (and the nonce the transcript's seed gives),
    /// unsigned: the engine checks claims, not signatures.
    fn id_token(&mut self, token: &str) -> String {
        if let Some(known) = self.seen.get(token) {
            return known.clone();
        }
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|mut claims| {
                if let Value::Object(map) = &mut claims {
                    for (name, value) in map.iter_mut() {
                        if name == "nonce"
                            && let Some(nonce) = value.as_str()
                        {
                            *value = Value::String(self.derived(nonce));
                        } else {
                            self.personal_claim(name, value);
                        }
                    }
                }
                claims
            });
        let replaced = match claims {
            // Re-signed with the published transcript key (the provider's key cannot sign
            // the edited claims); key sets are replaced by the transcript key's below.
            Some(claims) => signed_id_token(&claims),
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
            identity: session.identity.as_ref().map(|i| self.identity(i)),
            endpoints: tessera_engine::Endpoints {
                signing_keys: if session.endpoints.signing_keys.is_empty() {
                    Vec::new()
                } else {
                    transcript_keys()
                },
                ..session.endpoints.clone()
            },
            ..session.clone()
        }
    }

    fn json(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if self.personal_claim(key, value) {
                        continue;
                    }
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
            if is_key_set(&value) {
                // The provider's keys verify its signatures, not the re-signed tokens.
                return transcript_key_set().to_string();
            }
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
                let value = match &*k {
                    "code" => self.placeholder(&v, "code"),
                    "state" => self.derived(&v),
                    _ => v.into_owned(),
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
                headers: headers
                    .iter()
                    .filter(|(name, _)| !dropped_header(name))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect::<BTreeMap<_, _>>(),
                body: self.body(body),
            },
            Input::Callback { url } => Input::Callback { url: self.url(url) },
            Input::PastedCode { text } => {
                let text = text.trim();
                let cleaned = if text.contains("://") {
                    self.url(text)
                } else if let Some((code, state)) = text.split_once('#') {
                    let state = self.derived(state);
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

/// A JWK Set (`{"keys": [{"kty": …}, …]}`), as `jwks_uri` answers.
fn is_key_set(value: &Value) -> bool {
    value
        .get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| keys.iter().all(|k| k.get("kty").is_some()))
}

fn transcript_keys() -> Vec<SigningKey> {
    serde_json::from_value(transcript_key_set()["keys"].clone()).unwrap_or_default()
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    fn jwt(claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", part(&json!({"alg": "RS256"})), part(claims))
    }

    #[test]
    fn cookies_personal_claims_and_the_live_state_and_nonce_are_replaced() {
        let mut clean = Cleaner::with_derived(HashMap::from([
            ("live-state".to_owned(), "new-state".to_owned()),
            ("live-nonce".to_owned(), "new-nonce".to_owned()),
        ]));
        let id_token = jwt(&json!({
            "iss": "https://op.example", "sub": "alice", "nonce": "live-nonce",
            "email": "alice@example.test", "name": "Alice Example",
            "address": {"street_address": "1 Main St"}, "email_verified": true,
        }));
        let response = Input::HttpResponse {
            id: tessera_engine::RequestId(1),
            status: 200,
            headers: BTreeMap::from([
                ("content-type".to_owned(), "application/json".to_owned()),
                ("set-cookie".to_owned(), "_session=abc".to_owned()),
                ("authorization".to_owned(), "Bearer x".to_owned()),
            ]),
            body: json!({"access_token": "at", "id_token": id_token}).to_string(),
        };
        let Input::HttpResponse { headers, body, .. } = clean.input(&response) else {
            unreachable!()
        };
        assert_eq!(headers.keys().collect::<Vec<_>>(), ["content-type"]);
        let body: Value = serde_json::from_str(&body).unwrap();
        let cleaned = claims(body["id_token"].as_str().unwrap());
        assert_eq!(cleaned["sub"], "subject-1");
        assert_eq!(cleaned["nonce"], "new-nonce");
        assert_eq!(cleaned["email"], "email-1@example.invalid");
        assert_eq!(cleaned["name"], "name-1");
        assert_eq!(cleaned["address"], json!({"formatted": "address-1"}));
        assert_eq!(cleaned["email_verified"], true);
        assert_eq!(cleaned["iss"], "https://op.example");

        // UserInfo and a stored identity: the same subject, the same placeholder.
        let userinfo = Input::HttpResponse {
            id: tessera_engine::RequestId(2),
            status: 200,
            headers: BTreeMap::new(),
            body: json!({"sub": "alice", "preferred_username": "alice"}).to_string(),
        };
        let Input::HttpResponse { body, .. } = clean.input(&userinfo) else {
            unreachable!()
        };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["sub"], "subject-1");
        assert_eq!(body["preferred_username"], "username-1");

        let callback = clean.input(&Input::Callback {
            url: "http://127.0.0.1:1/callback?code=c0de&state=live-state".into(),
        });
        let Input::Callback { url } = callback else {
            unreachable!()
        };
        assert_eq!(
            url,
            "http://127.0.0.1:1/callback?code=code-1&state=new-state"
        );
        let pasted = clean.input(&Input::PastedCode {
            text: "c0de#live-state".into(),
        });
        assert!(matches!(pasted, Input::PastedCode { text } if text == "code-1#new-state"));
        let identity = clean.identity(&Identity {
            subject: Some("alice".into()),
            email: Some("alice@example.test".into()),
            groups: vec!["engineering".into()],
            ..Identity::default()
        });
        assert_eq!(identity.subject.as_deref(), Some("subject-1"));
        assert_eq!(identity.email.as_deref(), Some("email-1@example.invalid"));
        assert_eq!(identity.groups, ["engineering"]);
    }
}
