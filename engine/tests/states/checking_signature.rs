//! `checking_signature_for_login` and `checking_signature_for_refresh`: an engine without
//! a signature verifier (the browser package's, built without `rust-crypto`) asks the host
//! to check each fitting key in turn (`VerifySignature`) and waits for the answers. An
//! engine with one (the default here) answers inside `handle`, which every other test and
//! transcript shows.

use tessera_engine::driver::{Action, Command, Driver, DriverInput, DriverOptions, Reply};
use tessera_engine::{
    Config, Effect, Endpoints, Error, Event, IdTokenProblem, Input, LoginMethod, Rejected,
    SignatureAlgorithm, SignatureCheck, SigningKey, UnixMillis, WaiterId, transcript_key_set,
    verify_with_rust_crypto,
};

use crate::scenario::*;

fn transcript_key() -> SigningKey {
    serde_json::from_value(transcript_key_set()["keys"][0].clone()).unwrap()
}

/// A key under the transcript key's `kid` that did not sign anything here (another valid
/// Ed25519 public key: the transcript key with one bit of its point changed would not
/// always decode, so a key from the independent fixture is used).
fn impostor() -> SigningKey {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/signed_tokens.json")).unwrap();
    let mut key: SigningKey = serde_json::from_value(fixture["keys"][2].clone()).unwrap();
    assert_eq!(key.kty, "OKP");
    key.kid = transcript_key().kid;
    key
}

fn pinned(keys: Vec<SigningKey>) -> Config {
    let mut config = config();
    config.endpoints.signing_keys = keys;
    config
}

/// The engine in `exchanging_code`, asking the host for signature checks.
fn exchanging_code(config: Config) -> Scenario {
    let mut s = Scenario::with_config(config);
    s.engine.set_signature_verifier(None);
    s.to_exchanging_code()
}

fn token_response(
    s: &Scenario,
    sub: &str,
) -> (u16, std::collections::BTreeMap<String, String>, String) {
    let id_token = s.id_token(sub);
    json(
        200,
        &serde_json::json!({"access_token":"at-9","token_type":"bearer","expires_in":3600,"refresh_token":"rt-9","id_token":id_token}).to_string(),
    )
}

fn the_check(effects: &[Effect]) -> SignatureCheck {
    match effects {
        [Effect::VerifySignature(check)] => check.clone(),
        _ => panic!("expected one VerifySignature alone: {effects:?}"),
    }
}

fn answer(s: &mut Scenario, check: &SignatureCheck, valid: bool) -> Vec<Effect> {
    s.input(Input::SignatureChecked {
        id: check.id,
        valid,
    })
}

#[test]
fn a_login_waits_for_the_hosts_check_and_goes_on_when_it_is_valid() {
    let mut s = exchanging_code(pinned(vec![transcript_key()]));
    let response = token_response(&s, "alice");
    let id_token = serde_json::from_str::<serde_json::Value>(&response.2).unwrap()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let check = the_check(&s.respond(response));
    assert_eq!(s.state(), "checking_signature_for_login");
    assert_eq!(check.algorithm, SignatureAlgorithm::EdDsa);
    assert_eq!(check.key, transcript_key());
    let (signing_input, signature) = id_token.rsplit_once('.').unwrap();
    assert_eq!(check.signing_input, signing_input);
    assert_eq!(check.signature, signature);
    assert!(verify_with_rust_crypto(&check));
    // The ID token's claims never show in Debug.
    let shown = format!(
        "{:?} {:?}",
        Effect::VerifySignature(check.clone()),
        s.engine
    );
    assert!(
        !shown.contains(signing_input) && !shown.contains(signature),
        "{shown}"
    );
    // Nothing is stored and no caller served until the answer.
    assert!(s.engine.session().is_none());
    let effects = answer(&mut s, &check, true);
    assert!(
        matches!(&effects[0], Effect::PersistSession { session } if session.endpoints.signing_keys == vec![transcript_key()])
    );
    assert!(matches!(&effects[1], Effect::Event(Event::LoggedIn { .. })));
    assert_eq!(s.state(), "idle");
}

#[test]
fn a_login_whose_named_key_does_not_verify_fails_without_a_fetch() {
    let mut config = pinned(vec![transcript_key()]);
    config.endpoints.jwks = Some(format!("{ISSUER}/jwks"));
    let mut s = exchanging_code(config);
    let response = token_response(&s, "alice");
    let check = the_check(&s.respond(response));
    let effects = answer(&mut s, &check, false);
    assert!(requests(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        single_event(&effects),
        &Event::LoginFailed {
            error: Error::IdToken {
                problem: IdTokenProblem::BadSignature
            }
        }
    );
    assert!(s.engine.session().is_none());
}

#[test]
fn keys_that_fit_are_tried_one_after_another_and_the_one_that_verified_is_kept() {
    let mut s = exchanging_code(pinned(vec![impostor(), transcript_key()]));
    let response = token_response(&s, "alice");
    let first = the_check(&s.respond(response));
    assert_eq!(first.key, impostor());
    assert!(!verify_with_rust_crypto(&first));
    let second = the_check(&answer(&mut s, &first, false));
    assert_ne!(second.id, first.id);
    assert_eq!(second.key, transcript_key());
    assert_eq!(s.state(), "checking_signature_for_login");
    // The first check's id is spent.
    let late = s.try_input(Input::SignatureChecked {
        id: first.id,
        valid: true,
    });
    assert!(matches!(late, Err(Rejected::Unexpected { .. })), "{late:?}");
    let effects = answer(&mut s, &second, true);
    let Effect::PersistSession { session } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(session.endpoints.signing_keys, vec![transcript_key()]);
}

#[test]
fn a_key_set_fetched_for_the_login_is_checked_by_the_host_too() {
    let mut config = config();
    config.endpoints.jwks = Some(format!("{ISSUER}/jwks"));
    let mut s = exchanging_code(config);
    let response = token_response(&s, "alice");
    let effects = s.respond(response);
    assert_eq!(requests(&effects)[0].url, format!("{ISSUER}/jwks"));
    assert_eq!(s.state(), "fetching_keys_for_login");
    let check = the_check(&s.respond(json(200, &transcript_key_set().to_string())));
    assert_eq!(check.key, transcript_key());
    // Not valid after the fetch: a bad signature, and no second fetch.
    let effects = answer(&mut s, &check, false);
    assert!(requests(&effects).is_empty(), "{effects:?}");
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::IdToken {
                problem: IdTokenProblem::BadSignature
            }
        }
    ));
}

#[test]
fn cancel_while_checking_ends_the_login_and_the_late_answer_is_refused() {
    let mut s = exchanging_code(pinned(vec![transcript_key()]));
    let response = token_response(&s, "alice");
    let check = the_check(&s.respond(response));
    let effects = s.input(Input::Cancel);
    assert_eq!(
        single_event(&effects),
        &Event::LoginFailed {
            error: Error::Cancelled
        }
    );
    assert_eq!(s.state(), "logged_out");
    let late = s.try_input(Input::SignatureChecked {
        id: check.id,
        valid: true,
    });
    assert!(late.is_err());
    assert!(s.engine.session().is_none());
}

/// Refreshing with a remembered key, the check in flight under the refresh lock.
fn refreshing_with_remembered_key() -> Scenario {
    let mut s = Scenario::new();
    s.engine.set_signature_verifier(None);
    let mut stored = session(60);
    stored.endpoints = Endpoints {
        signing_keys: vec![transcript_key()],
        ..Endpoints::default()
    };
    s.input(Input::SessionLoaded {
        session: Some(stored),
    });
    s.advance_secs(120);
    s.get_token(1, 0);
    let stored = s.engine.session().cloned();
    s.input(Input::SessionLocked { session: stored });
    assert_eq!(s.state(), "refreshing");
    s
}

fn refresh_response() -> (u16, std::collections::BTreeMap<String, String>, String) {
    let id_token = tessera_engine::signed_id_token(&serde_json::json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "alice", "exp": START / 1000 + 7200,
    }));
    json(
        200,
        &serde_json::json!({"access_token":"at-2","token_type":"bearer","expires_in":3600,"refresh_token":"rt-2","id_token":id_token}).to_string(),
    )
}

#[test]
fn a_refresh_waits_for_the_check_under_the_lock_and_callers_join_it() {
    let mut s = refreshing_with_remembered_key();
    let check = the_check(&s.respond(refresh_response()));
    assert_eq!(s.state(), "checking_signature_for_refresh");
    // Single flight and the lock hold while the host checks.
    assert!(s.get_token(2, 0).is_empty());
    assert!(
        s.input(Input::Logout { force: false }).is_empty(),
        "logout waits for the refresh"
    );
    let effects = answer(&mut s, &check, true);
    let Effect::PersistSession { session } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(session.refresh_token.as_ref().unwrap().expose(), "rt-2");
    assert_eq!(effects[1], Effect::UnlockSession);
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Event(Event::TokenReady { waiters, .. }) if *waiters == vec![WaiterId(1), WaiterId(2)])));
    // Then the deferred logout runs: it takes the lock the refresh released.
    assert_eq!(effects.last(), Some(&Effect::LockSession), "{effects:?}");
    assert_eq!(s.state(), "locking_for_logout");
}

#[test]
fn a_refresh_whose_signature_does_not_verify_is_refused() {
    let mut s = refreshing_with_remembered_key();
    let check = the_check(&s.respond(refresh_response()));
    let effects = answer(&mut s, &check, false);
    assert!(effects.contains(&Effect::UnlockSession), "{effects:?}");
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::PersistSession { .. })),
        "{effects:?}"
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Event(Event::RefreshFailed {
            error: Error::IdToken {
                problem: IdTokenProblem::BadSignature
            },
            ..
        })
    )));
    assert_eq!(
        s.engine
            .session()
            .unwrap()
            .refresh_token
            .as_ref()
            .unwrap()
            .expose(),
        "rt-1"
    );
}

#[test]
fn the_driver_hands_the_check_to_its_host_and_replies_after_the_answer() {
    let now = UnixMillis(START);
    let mut driver = Driver::new(
        pinned(vec![transcript_key()]),
        [42; 32],
        now,
        DriverOptions {
            journal: true,
            ..DriverOptions::default()
        },
    );
    driver.set_signature_verifier(None);
    let actions =
        |driver: &mut Driver| std::iter::from_fn(|| driver.poll_action()).collect::<Vec<_>>();
    assert_eq!(actions(&mut driver), vec![Action::Load]);
    driver
        .handle(
            now,
            DriverInput::Loaded {
                session: None,
                version: None,
            },
        )
        .unwrap();
    let login = driver.call(
        now,
        Command::Login {
            method: LoginMethod::Browser,
            redirect_uri: Some(REDIRECT.into()),
        },
    );
    let opened = actions(&mut driver);
    let Some(Action::OpenBrowser { url }) = opened
        .iter()
        .find(|a| matches!(a, Action::OpenBrowser { .. }))
    else {
        panic!("{opened:?}")
    };
    let url = url::Url::parse(url).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let (state, nonce) = (param("state"), param("nonce"));
    driver.call(
        now,
        Command::Callback {
            url: format!("{REDIRECT}?code=code-1&state={state}&iss={ISSUER}"),
            last: true,
        },
    );
    let sent = actions(&mut driver);
    let Some(Action::Send(request)) = sent.iter().find(|a| matches!(a, Action::Send(_))) else {
        panic!("{sent:?}")
    };
    let id_token = tessera_engine::signed_id_token(&serde_json::json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "alice", "nonce": nonce, "exp": START / 1000 + 3600,
    }));
    let (status, headers, body) = json(
        200,
        &serde_json::json!({"access_token":"at-9","token_type":"bearer","expires_in":3600,"id_token":id_token}).to_string(),
    );
    driver
        .handle(
            now,
            DriverInput::HttpResponse {
                id: request.id,
                status,
                headers,
                body,
            },
        )
        .unwrap();
    let asked = actions(&mut driver);
    let [Action::VerifySignature(check)] = asked.as_slice() else {
        panic!("{asked:?}")
    };
    // A few seconds later (the host's check is asynchronous).
    let later = now.plus_secs(2);
    driver
        .handle(
            later,
            DriverInput::SignatureChecked {
                id: check.id,
                valid: true,
            },
        )
        .unwrap();
    let after = actions(&mut driver);
    assert!(matches!(&after[0], Action::Save { .. }), "{after:?}");
    driver
        .handle(
            later,
            DriverInput::Saved {
                version: tessera_engine::driver::Version(1),
            },
        )
        .unwrap();
    let replied = actions(&mut driver);
    assert!(
        replied.iter().any(
            |a| matches!(a, Action::Reply { call, reply: Reply::LoggedIn(_) } if *call == login)
        ),
        "{replied:?}"
    );
    // A recording leaves the answer out: a replay checks signatures itself.
    assert!(
        driver
            .take_journal()
            .iter()
            .all(|(_, input)| !matches!(input, Input::SignatureChecked { .. }))
    );
}
