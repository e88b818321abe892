//! Properties every state shares: determinism, no secret in debug output, no panic on
//! garbage, and a session that survives bad input.

use std::collections::BTreeMap;

use tessera_engine::{Effect, Input, LoginMethod, RequestId, Secret, TransportErrorKind, WaiterId};

use crate::scenario::*;

fn login_run(seed: [u8; 32]) -> Vec<Effect> {
    let mut engine = tessera_engine::Engine::new(config(), seed, tessera_engine::UnixMillis(START));
    let now = tessera_engine::UnixMillis(START);
    engine
        .handle(now, Input::SessionLoaded { session: None })
        .unwrap();
    engine
        .handle(
            now,
            Input::Login {
                method: LoginMethod::Browser,
                redirect_uri: Some(REDIRECT.into()),
            },
        )
        .unwrap();
    std::iter::from_fn(|| engine.poll_effect()).collect()
}

#[test]
fn same_seed_same_effects_other_seed_other_effects() {
    assert_eq!(login_run([1; 32]), login_run([1; 32]));
    assert_ne!(login_run([1; 32]), login_run([2; 32]));
}

/// Bodies a broken or hostile server might send.
const GARBAGE: &[&str] = &[
    "",
    "{",
    "[]",
    "null",
    "\"text\"",
    "<html><body>502 Bad Gateway</body></html>",
    r#"{"access_token": 5}"#,
    r#"{"access_token": "a", "expires_in": -1e308}"#,
    r#"{"access_token": "a", "expires_in": 1e400}"#,
    r#"{"access_token": "a", "token_type": ["bearer"]}"#,
    r#"{"access_token": "", "token_type": "bearer"}"#,
    r#"{"error": {"nested": true}}"#,
    r#"{"error": "x", "error_description": "\u001b[31mred\u0007"}"#,
    r#"{"access_token": "a", "id_token": "a.b.c"}"#,
    r#"{"access_token": "a", "id_token": "....."}"#,
    r#"{"device_code": "d", "user_code": "u", "verification_uri": "v", "expires_in": "soon"}"#,
    r#"{"issuer": 7}"#,
    "\u{feff}{}",
];

type Builder = fn() -> Scenario;

fn scenarios() -> Vec<(&'static str, Builder)> {
    vec![
        ("exchanging_code", || Scenario::new().to_exchanging_code()),
        ("polling_device", || Scenario::new().to_polling_device()),
        ("refreshing", || Scenario::new().to_refreshing()),
        ("revoking", || Scenario::new().to_revoking()),
    ]
}

#[test]
fn garbage_responses_never_panic_and_never_store_a_session() {
    for (name, build) in scenarios() {
        for status in [200u16, 400, 401, 500, 302] {
            for body in GARBAGE {
                let mut s = build();
                let before = s.engine.session().cloned();
                let mut headers = BTreeMap::new();
                headers.insert("content-type".into(), "application/json".into());
                let effects = s.respond((status, headers, (*body).into()));
                for effect in &effects {
                    if let Effect::PersistSession { session } = effect {
                        panic!("{name}: {status} {body:?} persisted {session:?}");
                    }
                }
                if name == "refreshing" {
                    assert_eq!(
                        s.engine.session().cloned(),
                        before,
                        "{name}: {status} {body:?} changed the session"
                    );
                }
            }
        }
    }
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let mut s = Scenario::new().to_exchanging_code();
    let huge = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(1 << 20));
    let effects = s.respond(json(200, &huge));
    let message = format!("{effects:?}");
    assert!(message.contains("TooLarge"), "{message}");
}

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_input_sequences_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let mut s = Scenario::new();
        for _ in 0..40 {
            let id = RequestId(rng.next() % 6);
            let input = match rng.next() % 12 {
                0 => Input::SessionLoaded {
                    session: Some(session(rng.next() % 7200)),
                },
                1 => Input::SessionLocked {
                    session: if rng.next().is_multiple_of(2) {
                        None
                    } else {
                        Some(session(3600))
                    },
                },
                2 => Input::Login {
                    method: *rng.pick(&[
                        LoginMethod::Browser,
                        LoginMethod::Paste,
                        LoginMethod::Device,
                    ]),
                    redirect_uri: Some(REDIRECT.into()),
                },
                3 => Input::GetToken {
                    waiter: WaiterId(rng.next() % 4),
                    min_ttl_secs: rng.next() % 4000,
                },
                4 => Input::TokenRejected {
                    waiter: WaiterId(1),
                    access_token: Secret::new("at-1"),
                },
                5 => Input::Logout {
                    force: rng.next().is_multiple_of(2),
                },
                6 => Input::Callback {
                    url: format!("{REDIRECT}?code=c&state={}", rng.next()),
                },
                7 => Input::PastedCode {
                    text: (*rng.pick(GARBAGE)).into(),
                },
                8 => Input::HttpResponse {
                    id,
                    status: *rng.pick(&[200, 400, 500]),
                    headers: BTreeMap::new(),
                    body: (*rng.pick(GARBAGE)).into(),
                },
                9 => Input::HttpFailed {
                    id,
                    kind: TransportErrorKind::Timeout,
                    detail: String::new(),
                },
                10 => Input::Cancel,
                _ => Input::Timeout,
            };
            s.advance_secs(rng.next() % 400);
            let _ = s.try_input(input);
        }
    }
}

#[test]
fn debug_output_never_contains_secrets() {
    let mut s = Scenario::new().to_exchanging_code();
    let effects = s.respond(json(
        200,
        &token_body("SECRET-ACCESS", Some("SECRET-REFRESH"), 3600),
    ));
    let shown = format!("{effects:?} {:?} {:?}", s.engine, s.engine.session());
    assert!(
        !shown.contains("SECRET-ACCESS") && !shown.contains("SECRET-REFRESH"),
        "{shown}"
    );
    assert!(!shown.contains("code-1"));
}

#[test]
fn debug_of_inputs_and_requests_never_contains_secrets() {
    // The code exchange request carries the code and the verifier in its body.
    let mut s = Scenario::new().to_awaiting_callback();
    let callback = tessera_engine::Input::Callback {
        url: s.callback_url(),
    };
    let shown_input = format!("{callback:?}");
    let exchange = s.input(callback);
    let (status, headers, body) = json(
        200,
        &token_body("SECRET-ACCESS", Some("SECRET-REFRESH"), 3600),
    );
    let token_response = tessera_engine::Input::HttpResponse {
        id: tessera_engine::RequestId(1),
        status,
        headers,
        body,
    };
    let shown = format!("{shown_input} {exchange:?} {token_response:?}");
    assert!(
        shown.contains("body_bytes"),
        "the exchange request is shown: {shown}"
    );
    for secret in [
        "code-1",
        "SECRET-ACCESS",
        "SECRET-REFRESH",
        "code_verifier=",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let pasted = tessera_engine::Input::PastedCode {
        text: "SECRET-CODE#state".into(),
    };
    assert!(!format!("{pasted:?}").contains("SECRET-CODE"));
}

#[test]
fn error_messages_never_contain_secrets() {
    let mut s = Scenario::new().to_exchanging_code();
    let effects = s.respond(json(
        400,
        r#"{"error":"invalid_grant","error_description":"bad"}"#,
    ));
    for event in events(&effects) {
        if let tessera_engine::Event::LoginFailed { error } = event {
            let message = error.to_string();
            assert!(!message.contains("code-1"), "{message}");
            assert!(
                message.contains("invalid_grant") && message.contains("sign in again"),
                "{message}"
            );
        }
    }
}
