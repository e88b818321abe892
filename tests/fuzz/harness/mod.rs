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

mod checks;
mod host;
mod provider;
mod store;

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
