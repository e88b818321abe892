//! The session driver under arbitrary input: one byte string is read as a sequence of
//! host events (callers' commands, HTTP answers — well-formed, mutated or raw bytes —, store
//! and lock answers, a sibling process writing the store, time passing, the timer) fed to
//! [`Driver`], with a small model of the provider and the store around it.
//!
//! Shared by the cargo-fuzz target (`tests/fuzz/fuzz_targets/driver.rs`, nightly,
//! `make fuzz`) and the bounded pass on stable (`tests/fuzz_driver.rs`, in `make test`).
//! Every violated invariant panics (the fuzzer reports a panic as a crash):
//!
//! 1. no input panics (the driver, the engine and every parser under them);
//! 2. no secret the provider issued or the client generated (access, refresh and ID
//!    tokens, codes, device codes, the PKCE verifier) appears in the `Debug` text of any
//!    action, or in the `Display` text of any error, rejection or notice;
//! 3. never two refresh requests in flight at once (sent and not yet answered);
//! 4. never a save of a session older than the stored one: a save the store would accept
//!    must not replace a refresh token with an earlier one of the same grant (the provider
//!    has rotated it; storing it loses the session at the next refresh);
//! 5. while a save or delete is unanswered the driver asks for no other store operation;
//! 6. every call is answered at most once, and the driver still answers at the end.

use std::collections::{BTreeMap, HashMap};

use tessera_engine::driver::{
    Action, CallId, Command, Driver, DriverInput, DriverOptions, Notice, Reply, Version,
};
use tessera_engine::{
    Config, DerivedEndpoint, Endpoint, Endpoints, HandedOffLogin, HttpRequest, LoginMethod,
    RequestId, Secret, StoredSession, TransportErrorKind, UnixMillis,
};

const ISSUER: &str = "https://op.example";
const CLIENT: &str = "tessera-cli";
const START: u64 = 1_700_000_000_000;

/// Reads choices from the fuzzer's bytes; zeros once they run out.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.u8() as usize % n }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// Up to `max` raw bytes, as a (lossy) string: what a host makes of a body.
    fn text(&mut self, max: usize) -> String {
        let len = (self.u16() as usize).min(max);
        let end = (self.pos + len).min(self.data.len());
        let start = self.pos.min(end);
        self.pos = end;
        String::from_utf8_lossy(&self.data[start..end]).into_owned()
    }
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// One answer the store still owes the driver.
#[derive(Debug)]
enum StoreAsk {
    Load,
    Save {
        session: Box<StoredSession>,
        replaces: Option<Version>,
    },
    Delete,
    /// The lease asked for, in ms.
    Lock(u64),
}

/// The provider, the store and the host around one driver.
struct World {
    driver: Driver,
    now: u64,
    /// Requests sent and not yet answered, in order.
    in_flight: Vec<HttpRequest>,
    /// Store and lock answers owed, in order asked.
    asks: Vec<StoreAsk>,
    stored: Option<(StoredSession, Version)>,
    next_version: u64,
    /// The lock is ours until this time (a lease).
    lock_until: Option<u64>,
    timer: Option<u64>,
    next_call: u64,
    answered: BTreeMap<u64, usize>,
    /// Everything that must never be shown: the made-up tokens and codes
    /// (`s<kind><8 digits>e`, found by a scan of each text) ...
    issued: std::collections::HashSet<String>,
    /// ... and the rest (ID tokens, PKCE verifiers), searched for one by one.
    secrets: Vec<String>,
    /// Refresh token → (grant, generation).
    refresh_tokens: HashMap<String, (u32, u32)>,
    next_grant: u32,
    counter: u32,
    /// `state` and `nonce` of the last authorization URL.
    state: Option<String>,
    nonce: Option<String>,
    handed_off: Option<Box<HandedOffLogin>>,
    last_access_token: Option<String>,
    stopped: bool,
    /// `TESSERA_FUZZ_TRACE=1`: print every input and action (to read a failing input).
    trace: bool,
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_param(query, name)
}

fn form_param(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A parameter of a form or JSON request body.
fn body_param(body: &str, name: &str) -> Option<String> {
    if body.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        value.get(name)?.as_str().map(str::to_owned)
    } else {
        form_param(body, name)
    }
}

fn is_refresh(request: &HttpRequest) -> bool {
    request.endpoint == Endpoint::Token
        && request
            .body
            .as_deref()
            .and_then(|b| body_param(b, "grant_type"))
            .is_some_and(|g| g == "refresh_token")
}

impl World {
    fn new(bytes: &mut Bytes) -> World {
        let mut config = Config::new(ISSUER, CLIENT);
        config.scopes = vec!["openid".into(), "offline_access".into()];
        config.redirect_uri = Some("http://127.0.0.1:8400/callback".into());
        config.discovery = bytes.u8().is_multiple_of(4);
        if !config.discovery {
            config.endpoints = Endpoints {
                authorization: Some(format!("{ISSUER}/authorize")),
                token: Some(format!("{ISSUER}/token")),
                device_authorization: Some(format!("{ISSUER}/device")),
                revocation: bytes.bool().then(|| format!("{ISSUER}/revoke")),
                userinfo: bytes.bool().then(|| format!("{ISSUER}/userinfo")),
                end_session: bytes.bool().then(|| format!("{ISSUER}/logout")),
                ..Endpoints::default()
            };
        }
        config.derived.insert(
            "ws".into(),
            DerivedEndpoint {
                url: "https://api.example/ws-token".into(),
            },
        );
        if bytes.bool() {
            config.token_request = tessera_engine::TokenRequestFormat::Json;
        }
        let options = DriverOptions {
            lock_wait_ms: bytes.pick(&[0, 500, 60_000]),
            lock_lease_ms: bytes.pick(&[1_000, 120_000]),
            can_prompt_for_code: bytes.bool(),
            journal: false,
        };
        let mut seed = [0u8; 32];
        seed[0] = bytes.u8();
        let driver = Driver::new(config, seed, UnixMillis(START), options);
        let mut world = World {
            driver,
            now: START,
            in_flight: Vec::new(),
            asks: Vec::new(),
            stored: None,
            next_version: 1,
            lock_until: None,
            timer: None,
            next_call: 1,
            answered: BTreeMap::new(),
            issued: std::collections::HashSet::new(),
            secrets: Vec::new(),
            refresh_tokens: HashMap::new(),
            next_grant: 0,
            counter: 0,
            state: None,
            nonce: None,
            handed_off: None,
            last_access_token: None,
            stopped: false,
            trace: std::env::var_os("TESSERA_FUZZ_TRACE").is_some(),
        };
        if bytes.bool() {
            let session = world.new_session(bytes);
            world.store(session);
        }
        world.drain();
        world
    }

    /// A fresh secret of this kind: `s<kind><8 digits>e` (none is part of another).
    fn secret(&mut self, kind: &str) -> String {
        self.counter += 1;
        let s = format!("s{kind}{:08}e", self.counter);
        self.issued.insert(s.clone());
        s
    }

    fn new_refresh_token(&mut self, grant: u32, generation: u32) -> String {
        let token = self.secret("RT");
        self.refresh_tokens
            .insert(token.clone(), (grant, generation));
        token
    }

    /// A session as a sibling process (or an earlier run) would have stored it.
    fn new_session(&mut self, bytes: &mut Bytes) -> StoredSession {
        let grant = self.next_grant;
        self.next_grant += 1;
        let refresh_token = bytes
            .bool()
            .then(|| Secret::new(self.new_refresh_token(grant, 0)));
        let lifetime = bytes.pick(&[-3_600_000i64, 0, 100_000, 3_600_000]);
        StoredSession {
            version: tessera_engine::SESSION_FORMAT_VERSION,
            issuer: Some(ISSUER.into()),
            client_id: CLIENT.into(),
            access_token: Secret::new(self.secret("AT")),
            refresh_token,
            id_token: None,
            obtained_at: UnixMillis(self.now),
            expires_at: UnixMillis(self.now.saturating_add_signed(lifetime)),
            scopes: vec!["openid".into(), "offline_access".into()],
            identity: None,
            endpoints: Endpoints::default(),
        }
    }

    fn store(&mut self, session: StoredSession) -> Version {
        let version = Version(self.next_version);
        self.next_version += 1;
        self.stored = Some((session, version));
        version
    }

    fn stored_session(&self) -> (Option<StoredSession>, Option<Version>) {
        match &self.stored {
            Some((s, v)) => (Some(s.clone()), Some(*v)),
            None => (None, None),
        }
    }

    fn lock_is_ours(&self) -> bool {
        self.lock_until.is_some_and(|until| until > self.now)
    }

    fn call(&mut self, command: Command) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.input(DriverInput::Call { call, command });
    }

    fn input(&mut self, input: DriverInput) {
        if self.trace {
            let detail = match &input {
                DriverInput::HttpResponse { status, body, .. } => format!(" {status} {body}"),
                DriverInput::Call {
                    command: Command::Callback { url, .. },
                    ..
                } => format!(" {url}"),
                DriverInput::Loaded {
                    session: Some(s),
                    version,
                }
                | DriverInput::LockAcquired {
                    session: Some(s),
                    version,
                } => {
                    format!(
                        " rt={:?} v={version:?}",
                        s.refresh_token.as_ref().map(|t| t.expose().to_owned())
                    )
                }
                _ => String::new(),
            };
            eprintln!("{} <- {input:?}{detail}", self.now - START);
        }
        let _ = self.driver.handle(UnixMillis(self.now), input);
        self.drain();
    }

    fn check_text(&self, text: &str, what: &str) {
        let b = text.as_bytes();
        for i in 0..b.len().saturating_sub(11) {
            if b[i] == b's'
                && b[i + 11] == b'e'
                && b[i + 1..i + 3].iter().all(u8::is_ascii_uppercase)
                && b[i + 3..i + 11].iter().all(u8::is_ascii_digit)
            {
                let candidate = &text[i..i + 12];
                assert!(
                    !self.issued.contains(candidate),
                    "secret {candidate} shown in {what}: {text}"
                );
            }
        }
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "secret {secret} shown in {what}: {text}"
            );
        }
    }

    /// Performs every action the driver asks for, checking the invariants.
    fn drain(&mut self) {
        while let Some(action) = self.driver.poll_action() {
            if self.trace {
                let detail = match &action {
                    Action::Save { session, .. } => format!(
                        " rt={:?}",
                        session
                            .refresh_token
                            .as_ref()
                            .map(|t| t.expose().to_owned())
                    ),
                    Action::Send(r) => format!(" {:?}", r.body),
                    _ => String::new(),
                };
                eprintln!("{} -> {action:?}{detail}", self.now - START);
            }
            self.check_text(&format!("{action:?}"), "an action's Debug text");
            match &action {
                Action::Reply {
                    reply: Reply::Failed { error },
                    ..
                }
                | Action::Notify(Notice::RefreshFailed { error, .. }) => {
                    self.check_text(&error.to_string(), "an error message")
                }
                Action::Reply {
                    reply: Reply::Refused { rejected },
                    ..
                } => self.check_text(&rejected.to_string(), "a rejection"),
                Action::Notify(Notice::CallbackIgnored { reason }) => {
                    self.check_text(reason, "a notice")
                }
                _ => {}
            }
            let write_pending = self
                .asks
                .iter()
                .any(|a| matches!(a, StoreAsk::Save { .. } | StoreAsk::Delete));
            if write_pending {
                assert!(
                    !matches!(action, Action::Load | Action::Save { .. } | Action::Delete),
                    "{action:?} asked while a write is unanswered: {:?}",
                    self.asks
                );
            }
            match action {
                Action::Send(request) => {
                    if is_refresh(&request) {
                        assert!(
                            !self.in_flight.iter().any(is_refresh),
                            "two refresh requests in flight: {:?} and {request:?}",
                            self.in_flight
                        );
                    }
                    if let Some(verifier) = request
                        .body
                        .as_deref()
                        .and_then(|b| body_param(b, "code_verifier"))
                    {
                        self.secrets.push(verifier);
                    }
                    self.in_flight.push(request);
                }
                Action::OpenBrowser { url } | Action::PromptForCode { url } => {
                    self.state = query_param(&url, "state");
                    self.nonce = query_param(&url, "nonce");
                }
                Action::Load => self.asks.push(StoreAsk::Load),
                Action::Save { session, replaces } => {
                    self.asks.push(StoreAsk::Save { session, replaces })
                }
                Action::Delete => self.asks.push(StoreAsk::Delete),
                Action::AcquireLock { lease_ms, .. } => self.asks.push(StoreAsk::Lock(lease_ms)),
                Action::ReleaseLock => self.lock_until = None,
                Action::ArmTimer { at } => self.timer = Some(at.0),
                Action::CancelTimer => self.timer = None,
                Action::Reply { call, reply } => {
                    let count = self.answered.entry(call.0).or_default();
                    *count += 1;
                    assert!(*count == 1, "call {} answered twice: {reply:?}", call.0);
                    match reply {
                        Reply::Token { access_token, .. } => {
                            self.last_access_token = Some(access_token.expose().to_owned())
                        }
                        Reply::HandedOff { url, login } => {
                            self.state = query_param(&url, "state");
                            self.nonce = query_param(&url, "nonce");
                            self.handed_off = Some(login);
                        }
                        _ => {}
                    }
                }
                Action::ShowUserCode(_) | Action::CloseRedirect | Action::Notify(_) => {}
                Action::VerifySignature(check) => {
                    panic!("the engine answers its own signature checks here: {check:?}")
                }
            }
        }
    }

    /// The store answers the oldest thing it owes.
    fn answer_store(&mut self, bytes: &mut Bytes) {
        if self.asks.is_empty() {
            return;
        }
        let ask = self.asks.remove(0);
        let fail = bytes.u8().is_multiple_of(8);
        let input = match ask {
            StoreAsk::Load if fail => DriverInput::StoreFailed {
                detail: "disk on fire".into(),
                conflict: false,
            },
            StoreAsk::Load => {
                let (session, version) = self.stored_session();
                DriverInput::Loaded { session, version }
            }
            StoreAsk::Save { session, replaces } => {
                let current = self.stored.as_ref().map(|(_, v)| *v);
                if replaces.is_some() && replaces != current {
                    DriverInput::StoreFailed {
                        detail: "version conflict".into(),
                        conflict: true,
                    }
                } else if fail {
                    DriverInput::StoreFailed {
                        detail: "disk full".into(),
                        conflict: false,
                    }
                } else {
                    self.check_not_older(&session);
                    let version = self.store(*session);
                    DriverInput::Saved { version }
                }
            }
            StoreAsk::Delete if fail => DriverInput::StoreFailed {
                detail: "read-only".into(),
                conflict: false,
            },
            StoreAsk::Delete => {
                self.stored = None;
                DriverInput::Deleted
            }
            StoreAsk::Lock(lease_ms) => match bytes.u8() % 8 {
                0 => DriverInput::LockBusy,
                1 => DriverInput::LockFailed {
                    detail: "lock file gone".into(),
                },
                _ => {
                    self.lock_until = Some(self.now.saturating_add(lease_ms));
                    let (session, version) = self.stored_session();
                    DriverInput::LockAcquired { session, version }
                }
            },
        };
        self.input(input);
    }

    /// Invariant 4: a save that replaces the stored session never goes back in a grant's
    /// rotation.
    fn check_not_older(&self, saving: &StoredSession) {
        let Some((stored, _)) = &self.stored else {
            return;
        };
        let generation = |s: &StoredSession| {
            s.refresh_token
                .as_ref()
                .and_then(|t| self.refresh_tokens.get(t.expose()).copied())
        };
        if let (Some((g_new, n_new)), Some((g_old, n_old))) =
            (generation(saving), generation(stored))
        {
            assert!(
                g_new != g_old || n_new >= n_old,
                "a save replaces refresh token generation {n_old} of grant {g_old} with the older generation {n_new}"
            );
        }
    }

    /// A sibling process writes the store (it respects our lock while the lease runs).
    fn sibling(&mut self, bytes: &mut Bytes) {
        if self.lock_is_ours() {
            return;
        }
        if self.trace {
            eprintln!("{} sibling writes", self.now - START);
        }
        match bytes.u8() % 4 {
            0 => self.stored = None,
            1 => {
                // A sibling refreshed: the next generation of the stored grant.
                let Some((mut session, _)) = self.stored.clone() else {
                    return;
                };
                let Some((grant, generation)) = session
                    .refresh_token
                    .as_ref()
                    .and_then(|t| self.refresh_tokens.get(t.expose()).copied())
                else {
                    return;
                };
                session.refresh_token =
                    Some(Secret::new(self.new_refresh_token(grant, generation + 1)));
                session.access_token = Secret::new(self.secret("AT"));
                session.obtained_at = UnixMillis(self.now);
                session.expires_at = UnixMillis(self.now + 3_600_000);
                self.store(session);
            }
            _ => {
                let session = self.new_session(bytes);
                self.store(session);
            }
        }
    }

    fn id_token(&mut self, bytes: &mut Bytes) -> String {
        let iss = match bytes.u8() % 8 {
            0 => "https://evil.example",
            1 => "",
            _ => ISSUER,
        };
        let aud = match bytes.u8() % 8 {
            0 => serde_json::json!("someone-else"),
            1 => serde_json::json!([CLIENT, "other"]),
            2 => serde_json::json!(7),
            _ => serde_json::json!(CLIENT),
        };
        let nonce = match bytes.u8() % 8 {
            0 => Some("wrong-nonce".to_owned()),
            1 => None,
            _ => self.nonce.clone(),
        };
        let exp = match bytes.u8() % 8 {
            0 => (self.now / 1000) as i64 - 3600,
            1 => i64::MAX,
            2 => -1,
            _ => (self.now / 1000) as i64 + 3600,
        };
        let sub = bytes.pick(&["alice", "bob", ""]);
        self.counter += 1;
        let mut claims = serde_json::json!({
            "iss": iss, "aud": aud, "exp": exp, "iat": self.now / 1000, "sub": sub,
            "email": "alice@example.test", "jti": format!("j{:08}", self.counter),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let header = match bytes.u8() % 8 {
            0 => r#"{"alg":"RS256","kid":"k1"}"#,
            1 => "not json",
            _ => r#"{"alg":"none"}"#,
        };
        let signature = match bytes.u8() % 4 {
            0 => "c2lnbmF0dXJl",
            _ => "",
        };
        match bytes.u8() % 16 {
            0 => "a.b".to_owned(),
            1 => format!("{}.!!!.", b64url(header.as_bytes())),
            _ => {
                let token = format!(
                    "{}.{}.{signature}",
                    b64url(header.as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                // Unique (its `jti`): the secret check finds it only where it was put.
                self.secrets.push(token.clone());
                token
            }
        }
    }

    /// A token endpoint success, well-formed or with one member made hostile.
    fn token_success(&mut self, bytes: &mut Bytes, request: &HttpRequest) -> String {
        let body = request.body.clone().unwrap_or_default();
        let grant_type = body_param(&body, "grant_type").unwrap_or_default();
        let (grant, generation) = if grant_type == "refresh_token" {
            body_param(&body, "refresh_token")
                .and_then(|t| self.refresh_tokens.get(&t).copied())
                .map(|(g, n)| (g, n + 1))
                .unwrap_or((u32::MAX, 0))
        } else {
            self.next_grant += 1;
            (self.next_grant - 1, 0)
        };
        let mut fields: Vec<(&str, String)> = Vec::new();
        let access = self.secret("AT");
        let access = match bytes.u8() % 16 {
            0 => "12345".into(),
            1 => "\"\"".into(),
            2 => format!("\"{access}\\u0000\\n\""),
            3 => "null".into(),
            _ => format!("\"{access}\""),
        };
        fields.push(("access_token", access));
        match bytes.u8() % 16 {
            0 => {}
            1 => fields.push(("token_type", "\"DPoP\"".into())),
            2 => fields.push(("token_type", "42".into())),
            3 => fields.push(("token_type", "\"bearer\"".into())),
            _ => fields.push(("token_type", "\"Bearer\"".into())),
        }
        match bytes.u8() % 16 {
            0 => {}
            1 => fields.push(("expires_in", "-5".into())),
            2 => fields.push(("expires_in", "1e300".into())),
            3 => fields.push(("expires_in", "\"60\"".into())),
            4 => fields.push(("expires_in", "0".into())),
            5 => fields.push(("expires_in", "18446744073709551616".into())),
            6 => fields.push(("expires_in", "2".into())),
            7 => fields.push(("expires_in", "\"soon\"".into())),
            _ => fields.push(("expires_in", format!("{}", bytes.u16()))),
        }
        match bytes.u8() % 8 {
            0 => {}
            1 => fields.push(("refresh_token", "7".into())),
            2 => {
                if let Some(old) = body_param(&body, "refresh_token") {
                    fields.push(("refresh_token", format!("\"{old}\"")));
                }
            }
            _ if grant != u32::MAX => {
                let token = self.new_refresh_token(grant, generation);
                fields.push(("refresh_token", format!("\"{token}\"")));
            }
            _ => {}
        }
        if !bytes.u8().is_multiple_of(4) {
            let id_token = self.id_token(bytes);
            fields.push(("id_token", format!("\"{id_token}\"")));
        }
        match bytes.u8() % 8 {
            0 => fields.push(("scope", "\"openid offline_access\"".into())),
            1 => fields.push(("scope", "[\"x\"]".into())),
            _ => {}
        }
        if bytes.u8().is_multiple_of(16) {
            // A duplicate key: which one wins must not matter to safety.
            fields.push(("access_token", format!("\"{}\"", self.secret("AT"))));
        }
        let json = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect::<Vec<_>>()
            .join(",");
        match bytes.u8() % 32 {
            0 => format!("{{{json}"),
            1 => format!("[{{{json}}}]"),
            _ => format!("{{{json}}}"),
        }
    }

    fn success_body(&mut self, bytes: &mut Bytes, request: &HttpRequest) -> String {
        match request.endpoint {
            Endpoint::Token => self.token_success(bytes, request),
            Endpoint::Discovery => {
                let issuer = if bytes.u8().is_multiple_of(8) {
                    "https://other.example"
                } else {
                    ISSUER
                };
                let iss_param = bytes.bool();
                let token = if bytes.u8().is_multiple_of(8) {
                    "http://op.example/token"
                } else {
                    "https://op.example/token"
                };
                format!(
                    r#"{{"issuer":"{issuer}","authorization_endpoint":"{ISSUER}/authorize","token_endpoint":"{token}","device_authorization_endpoint":"{ISSUER}/device","revocation_endpoint":"{ISSUER}/revoke","userinfo_endpoint":"{ISSUER}/userinfo","end_session_endpoint":"{ISSUER}/logout","authorization_response_iss_parameter_supported":{iss_param}}}"#
                )
            }
            Endpoint::DeviceAuthorization => {
                let device_code = self.secret("DC");
                let expires = bytes.pick(&["600", "-1", "0", "\"x\"", "1e300"]);
                let interval = bytes.pick(&["1", "0", "-3", "99999999999", "null"]);
                format!(
                    r#"{{"device_code":"{device_code}","user_code":"BCDF-GHJK","verification_uri":"{ISSUER}/activate","expires_in":{expires},"interval":{interval}}}"#
                )
            }
            Endpoint::Userinfo => {
                r#"{"sub":"alice","email":"alice@example.test","groups":["a","b\u0007"]}"#.into()
            }
            Endpoint::Derived => {
                let token = self.secret("DT");
                let expires = bytes.pick(&["300", "-1", "0", "\"60\"", "1e300", "86401"]);
                format!(r#"{{"token":"{token}","expires_in":{expires}}}"#)
            }
            _ => String::new(),
        }
    }

    /// Answers one request in flight.
    fn answer_http(&mut self, bytes: &mut Bytes) {
        if self.in_flight.is_empty() {
            return;
        }
        let index = bytes.below(self.in_flight.len());
        let request = self.in_flight.remove(index);
        let id = request.id;
        let content_type = bytes.pick(&[
            "application/json",
            "application/json; charset=utf-8",
            "text/html",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ]);
        let mut headers = BTreeMap::new();
        if !content_type.is_empty() {
            headers.insert("content-type".to_owned(), content_type.to_owned());
        }
        if bytes.u8().is_multiple_of(8) {
            let date = bytes.pick(&[
                "Tue, 14 Nov 2023 22:13:20 GMT",
                "garbage",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
            ]);
            headers.insert("date".into(), date.into());
        }
        if bytes.u8().is_multiple_of(8) {
            let after = bytes.pick(&["1", "-1", "99999999999999", "soon"]);
            headers.insert("retry-after".into(), after.into());
        }
        let (status, body) = match bytes.u8() % 8 {
            0..=2 => (
                bytes.pick(&[200u16, 200, 200, 201]),
                self.success_body(bytes, &request),
            ),
            3 => {
                let code = bytes.pick(&[
                    "invalid_grant",
                    "invalid_client",
                    "invalid_request",
                    "authorization_pending",
                    "slow_down",
                    "expired_token",
                    "access_denied",
                    "temporarily_unavailable",
                    "server_error",
                    "unsupported_token_type",
                    "",
                ]);
                let status = bytes.pick(&[400u16, 401, 403, 429, 500, 503, 200]);
                (
                    status,
                    format!(
                        r#"{{"error":"{code}","error_description":"bad \u0007\r\n thing","error_uri":"javascript:alert(1)"}}"#
                    ),
                )
            }
            4 => {
                let kind = bytes.pick(&[
                    TransportErrorKind::Timeout,
                    TransportErrorKind::Connect,
                    TransportErrorKind::Redirect,
                    TransportErrorKind::Other,
                ]);
                self.input(DriverInput::HttpFailed {
                    id,
                    kind,
                    detail: "connection reset".into(),
                });
                return;
            }
            5 => {
                let status = bytes.pick(&[301u16, 302, 404, 413, 500, 502, 504]);
                let body = bytes.pick(&[
                    "<html><body>Bad Gateway</body></html>",
                    "",
                    "\u{feff}{}",
                    "{\"a\":",
                ]);
                (status, body.to_owned())
            }
            _ => {
                let status = if bytes.bool() { 200 } else { bytes.u16() };
                (status, bytes.text(4096))
            }
        };
        let body = if bytes.u8().is_multiple_of(64) {
            // Over the response limit (hosts cut bodies at max_response_bytes + 1).
            format!("{body}{}", " ".repeat(request.max_response_bytes + 1))
        } else {
            body
        };
        self.input(DriverInput::HttpResponse {
            id,
            status,
            headers,
            body,
        });
    }

    fn callback_url(&mut self, bytes: &mut Bytes) -> String {
        let code = self.secret("CO");
        let state = match bytes.u8() % 8 {
            0 => Some("forged".to_owned()),
            1 => None,
            _ => self.state.clone(),
        };
        let iss = match bytes.u8() % 8 {
            0 => Some("https%3A%2F%2Fevil.example"),
            1 | 2 => None,
            _ => Some("https%3A%2F%2Fop.example"),
        };
        let mut params = Vec::new();
        match bytes.u8() % 8 {
            0 => params.push("error=access_denied&error_description=no%07thanks".to_owned()),
            1 => {}
            2 => params.push("code=".to_owned()),
            _ => params.push(format!("code={code}")),
        }
        if let Some(state) = state {
            params.push(format!("state={state}"));
        }
        if let Some(iss) = iss {
            params.push(format!("iss={iss}"));
        }
        let path = bytes.pick(&["/callback", "/callback", "/other", ""]);
        match bytes.u8() % 16 {
            0 => bytes.text(512),
            _ => format!("http://127.0.0.1:8400{path}?{}", params.join("&")),
        }
    }

    fn command(&mut self, bytes: &mut Bytes) {
        let command = match bytes.u8() % 16 {
            0..=4 => Command::GetToken {
                min_ttl_secs: bytes.pick(&[0, 0, 60, 3600, 999_999, u64::MAX]),
            },
            5 => Command::TokenRejected {
                access_token: Secret::new(match &self.last_access_token {
                    Some(t) if bytes.bool() => t.clone(),
                    _ => "not-a-token".into(),
                }),
            },
            6 => Command::GetDerivedToken {
                name: bytes.pick(&["ws", "ws", "nope"]).into(),
                min_ttl_secs: bytes.pick(&[0, 60, 999_999]),
            },
            7 | 8 => Command::Login {
                method: bytes.pick(&[
                    LoginMethod::Browser,
                    LoginMethod::Paste,
                    LoginMethod::Device,
                    LoginMethod::Handoff,
                ]),
                redirect_uri: bytes.bool().then(|| "http://127.0.0.1:9/callback".into()),
            },
            9 | 10 => Command::Callback {
                url: self.callback_url(bytes),
                last: bytes.bool(),
            },
            11 => {
                let text = match bytes.u8() % 4 {
                    0 => bytes.text(256),
                    1 => {
                        let code = self.secret("CO");
                        format!("{code}#{}", self.state.clone().unwrap_or_default())
                    }
                    _ => self.callback_url(bytes),
                };
                Command::PastedCode { text }
            }
            12 => match self.handed_off.take() {
                Some(login) => Command::ResumeLogin {
                    login,
                    url: self.callback_url(bytes),
                },
                None => Command::Status,
            },
            13 => Command::Logout {
                force: bytes.bool(),
            },
            14 => Command::Cancel,
            _ => Command::Status,
        };
        self.call(command);
    }

    /// Whatever a host may get wrong: an answer nothing asked for.
    fn unasked(&mut self, bytes: &mut Bytes) {
        let input = match bytes.u8() % 8 {
            0 => DriverInput::HttpResponse {
                id: RequestId(bytes.u16() as u64),
                status: 200,
                headers: BTreeMap::new(),
                body: "{}".into(),
            },
            1 => DriverInput::Saved {
                version: Version(99),
            },
            2 => DriverInput::Deleted,
            3 => DriverInput::LockBusy,
            4 => DriverInput::CallDropped {
                call: CallId(bytes.below(self.next_call as usize + 1) as u64),
            },
            5 => DriverInput::LaunchFailed {
                detail: "no browser".into(),
            },
            6 => DriverInput::Loaded {
                session: None,
                version: None,
            },
            _ => DriverInput::LockAcquired {
                session: None,
                version: None,
            },
        };
        // Only inputs nothing asked for: an answer owed goes through the model.
        let owed = match &input {
            DriverInput::Saved { .. } | DriverInput::Deleted | DriverInput::Loaded { .. } => {
                !self.asks.is_empty()
            }
            DriverInput::LockBusy | DriverInput::LockAcquired { .. } => {
                self.asks.iter().any(|a| matches!(a, StoreAsk::Lock(_)))
            }
            DriverInput::HttpResponse { id, .. } => self.in_flight.iter().any(|r| r.id == *id),
            _ => false,
        };
        if !owed {
            self.input(input);
        }
    }

    fn step(&mut self, bytes: &mut Bytes) {
        match bytes.u8() % 16 {
            0..=3 => self.command(bytes),
            4..=7 => self.answer_http(bytes),
            8 | 9 => self.answer_store(bytes),
            10 => {
                // Time passes: a little, to the timer, or a lot.
                let delta = match bytes.u8() % 4 {
                    0 => bytes.u16() as u64,
                    1 => self.timer.map_or(0, |t| t.saturating_sub(self.now)),
                    2 => bytes.u32() as u64,
                    _ => 1000,
                };
                self.now = self.now.saturating_add(delta);
            }
            11 | 12 => {
                if self.timer.is_some_and(|t| t <= self.now) || bytes.u8().is_multiple_of(8) {
                    self.timer = None;
                    self.input(DriverInput::TimerFired);
                }
            }
            13 => self.sibling(bytes),
            14 => self.unasked(bytes),
            _ => {
                if bytes.u8().is_multiple_of(16) && !self.stopped {
                    self.stopped = true;
                    self.input(DriverInput::Stop);
                }
            }
        }
    }
}

/// Runs one input through the driver; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let mut bytes = Bytes { data, pos: 0 };
    let mut world = World::new(&mut bytes);
    let mut steps = 0;
    while !bytes.done() && steps < 2000 {
        world.step(&mut bytes);
        steps += 1;
    }
    // Whatever state it ended in, the driver still answers (no input left it wedged).
    let call = world.next_call;
    world.call(Command::Status);
    assert!(
        world.answered.contains_key(&call),
        "no answer to status at the end"
    );
}

/// The secret check itself: a made-up token, a PKCE verifier or an ID token in a text
/// is caught (in any position), a text without one passes.
#[allow(dead_code)] // used by the stable pass, not by the fuzz target
pub fn secret_check_self_test() {
    let mut world = World::new(&mut Bytes { data: &[], pos: 0 });
    let token = world.secret("RT");
    world.secrets.push("verifier-0123456789".into());
    world.check_text(
        "nothing secret here: sRT00000000e sXX12345678e",
        "clean text",
    );
    for text in [
        token.clone(),
        format!("body: refresh_token={token}&x"),
        "…verifier-0123456789".to_owned(),
    ] {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            world.check_text(&text, "a planted secret")
        }));
        assert!(caught.is_err(), "not caught: {text}");
    }
}
