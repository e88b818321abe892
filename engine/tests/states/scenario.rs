//! A scenario builder that fast-forwards an engine to a named state, so each state's
//! tests start where they matter (after ureq-proto's `Scenario`).

// `to_<state>(self)` consumes the builder on purpose, as ureq-proto's scenarios do.
#![allow(clippy::wrong_self_convention)]
use std::collections::BTreeMap;

use tessera_engine::{
    Config, Effect, Endpoints, Engine, Event, HttpRequest, Input, LoginMethod, Rejected, RequestId,
    Secret, StoredSession, UnixMillis, WaiterId, signed_id_token,
};

pub const ISSUER: &str = "https://op.example";
pub const CLIENT: &str = "tessera-cli";
pub const START: u64 = 1_700_000_000_000;
pub const REDIRECT: &str = "http://127.0.0.1:49152/callback";

pub struct Scenario {
    pub engine: Engine,
    pub now: UnixMillis,
    /// Values read back from the authorization URL once a login started.
    pub state_param: Option<String>,
    pub nonce: Option<String>,
    pub pending: Option<RequestId>,
}

pub fn config() -> Config {
    Config {
        scopes: vec!["openid".into(), "offline_access".into()],
        endpoints: Endpoints {
            authorization: Some(format!("{ISSUER}/authorize")),
            token: Some(format!("{ISSUER}/token")),
            device_authorization: Some(format!("{ISSUER}/device")),
            revocation: Some(format!("{ISSUER}/revoke")),
            ..Endpoints::default()
        },
        ..Config::new(ISSUER, CLIENT)
    }
}

/// A stored session whose access token expires `lifetime_secs` after `START`.
pub fn session(lifetime_secs: u64) -> StoredSession {
    StoredSession {
        version: 1,
        issuer: Some(ISSUER.into()),
        client_id: CLIENT.into(),
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        id_token: None,
        obtained_at: UnixMillis(START),
        expires_at: UnixMillis(START).plus_secs(lifetime_secs),
        scopes: vec!["openid".into(), "offline_access".into()],
        identity: None,
        endpoints: Endpoints::default(),
    }
}

pub fn json(status: u16, body: &str) -> (u16, BTreeMap<String, String>, String) {
    (
        status,
        BTreeMap::from([("content-type".into(), "application/json".into())]),
        body.into(),
    )
}

pub fn token_body(access: &str, refresh: Option<&str>, expires_in: u64) -> String {
    let mut body = serde_json::json!({"access_token": access, "token_type": "Bearer", "expires_in": expires_in});
    if let Some(refresh) = refresh {
        body["refresh_token"] = refresh.into();
    }
    body.to_string()
}

impl Scenario {
    pub fn new() -> Self {
        Self::with_config(config())
    }

    pub fn with_config(config: Config) -> Self {
        let now = UnixMillis(START);
        let mut engine = Engine::new(config, [42; 32], now);
        assert_eq!(engine.poll_effect(), Some(Effect::LoadSession));
        assert_eq!(engine.poll_effect(), None);
        Self {
            engine,
            now,
            state_param: None,
            nonce: None,
            pending: None,
        }
    }

    pub fn state(&self) -> &'static str {
        self.engine.state_name()
    }

    pub fn advance_secs(&mut self, secs: u64) -> &mut Self {
        self.now = self.now.plus_secs(secs);
        self
    }

    /// Feeds an input that must be accepted; returns the effects.
    pub fn input(&mut self, input: Input) -> Vec<Effect> {
        let name = input.name();
        if let Err(rejected) = self.engine.handle(self.now, input) {
            panic!("`{name}` was rejected in {}: {rejected}", self.state());
        }
        self.drain()
    }

    /// Feeds an input that may be refused.
    pub fn try_input(&mut self, input: Input) -> Result<Vec<Effect>, Rejected> {
        let result = self.engine.handle(self.now, input);
        let effects = self.drain();
        result.map(|()| effects)
    }

    pub fn drain(&mut self) -> Vec<Effect> {
        let effects: Vec<Effect> = std::iter::from_fn(|| self.engine.poll_effect()).collect();
        if let Some(request) = effects.iter().rev().find_map(http) {
            self.pending = Some(request.id);
        }
        effects
    }

    /// Answers the last HTTP request.
    pub fn respond(
        &mut self,
        (status, headers, body): (u16, BTreeMap<String, String>, String),
    ) -> Vec<Effect> {
        let id = self.pending.expect("no request is pending");
        self.input(Input::HttpResponse {
            id,
            status,
            headers,
            body,
        })
    }

    pub fn get_token(&mut self, waiter: u64, min_ttl_secs: u64) -> Vec<Effect> {
        self.input(Input::GetToken {
            waiter: WaiterId(waiter),
            min_ttl_secs,
        })
    }

    /// Fires the timer at the time the engine asked for.
    pub fn fire_timer(&mut self) -> Vec<Effect> {
        let at = self.engine.poll_timeout().expect("no timer armed");
        self.now = self.now.max(at);
        self.input(Input::Timeout)
    }

    pub fn to_logged_out(mut self) -> Self {
        self.input(Input::SessionLoaded { session: None });
        assert_eq!(self.state(), "logged_out");
        self
    }

    pub fn to_idle(mut self) -> Self {
        self.input(Input::SessionLoaded {
            session: Some(session(3600)),
        });
        assert_eq!(self.state(), "idle");
        self
    }

    pub fn to_awaiting_callback(mut self) -> Self {
        self = self.to_logged_out();
        let effects = self.input(Input::Login {
            method: LoginMethod::Browser,
            redirect_uri: Some(REDIRECT.into()),
        });
        let Some(Effect::OpenBrowser { url }) = effects.first() else {
            panic!("{effects:?}")
        };
        let url = url::Url::parse(url).expect("authorization URL");
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        self.state_param = param("state");
        self.nonce = param("nonce");
        assert_eq!(self.state(), "awaiting_callback");
        self
    }

    pub fn callback_url(&self) -> String {
        format!(
            "{REDIRECT}?code=code-1&state={}&iss={}",
            self.state_param.as_deref().unwrap_or(""),
            ISSUER
        )
    }

    pub fn to_exchanging_code(mut self) -> Self {
        self = self.to_awaiting_callback();
        let url = self.callback_url();
        self.input(Input::Callback { url });
        assert_eq!(self.state(), "exchanging_code");
        self
    }

    pub fn id_token(&self, sub: &str) -> String {
        signed_id_token(&serde_json::json!({
            "iss": ISSUER, "aud": CLIENT, "sub": sub, "nonce": self.nonce, "exp": START / 1000 + 3600,
        }))
    }

    pub fn to_waiting_to_poll(mut self) -> Self {
        self = self.to_logged_out();
        self.input(Input::Login {
            method: LoginMethod::Device,
            redirect_uri: None,
        });
        self.respond(json(
            200,
            r#"{"device_code":"dc-1","user_code":"WDJBMJHT","verification_uri":"https://op.example/device","expires_in":600,"interval":5}"#,
        ));
        assert_eq!(self.state(), "waiting_to_poll");
        self
    }

    pub fn to_polling_device(mut self) -> Self {
        self = self.to_waiting_to_poll();
        self.fire_timer();
        assert_eq!(self.state(), "polling_device");
        self
    }

    /// Idle with a token that has expired, and waiter 1 asking for a token.
    pub fn to_locking_session(mut self) -> Self {
        self.input(Input::SessionLoaded {
            session: Some(session(60)),
        });
        self.advance_secs(120);
        self.get_token(1, 0);
        assert_eq!(self.state(), "locking_session");
        self
    }

    pub fn to_refreshing(mut self) -> Self {
        self = self.to_locking_session();
        let stored = self.engine.session().cloned();
        self.input(Input::SessionLocked { session: stored });
        assert_eq!(self.state(), "refreshing");
        self
    }

    pub fn to_confirming_grant_loss(mut self) -> Self {
        self = self.to_refreshing();
        self.respond(json(400, r#"{"error":"invalid_grant"}"#));
        assert_eq!(self.state(), "confirming_grant_loss");
        self
    }

    /// Logs out: `Logout`, which asks for the refresh lock first, then the lock's answer
    /// with the session storage holds (here: the one in memory). The effects of both.
    pub fn logout(&mut self, force: bool) -> Vec<Effect> {
        let stored = self.engine.session().cloned();
        let mut effects = self.input(Input::Logout { force });
        assert!(
            effects.contains(&Effect::LockSession),
            "a logout takes the refresh lock first: {effects:?}"
        );
        assert_eq!(self.state(), "locking_for_logout");
        effects.extend(self.input(Input::SessionLocked { session: stored }));
        effects
    }

    pub fn to_revoking(mut self) -> Self {
        self = self.to_idle();
        self.logout(false);
        assert_eq!(self.state(), "revoking");
        self
    }
}

pub fn http(effect: &Effect) -> Option<&HttpRequest> {
    match effect {
        Effect::Http(request) => Some(request),
        _ => None,
    }
}

pub fn requests(effects: &[Effect]) -> Vec<&HttpRequest> {
    effects.iter().filter_map(http).collect()
}

pub fn events(effects: &[Effect]) -> Vec<&Event> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The only event among the effects.
pub fn single_event(effects: &[Effect]) -> &Event {
    let events = events(effects);
    assert_eq!(events.len(), 1, "expected one event in {effects:?}");
    events[0]
}
