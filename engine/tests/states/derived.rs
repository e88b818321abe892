//! Derived tokens beside the session's states: what transcripts show less easily (a fetch
//! under way while the session refreshes, logs in again or logs out; reserved waiter
//! ids; secrets in `Debug`; random inputs).

use std::collections::BTreeMap;

use tessera_engine::{
    Config, DerivedEndpoint, Effect, Error, Event, Identity, Input, LoginMethod, Rejected,
    RequestId, Secret, TransportErrorKind, WaiterId,
};

use crate::scenario::*;

const WS: &str = "https://api.example/ws-token";

fn derived_config() -> Config {
    let mut config = config();
    config
        .derived
        .insert("ws".into(), DerivedEndpoint { url: WS.to_owned() });
    config
}

fn ask(s: &mut Scenario, waiter: u64) -> Vec<Effect> {
    s.input(Input::GetDerivedToken {
        waiter: WaiterId(waiter),
        name: "ws".into(),
        min_ttl_secs: 0,
    })
}

/// Idle with a one-hour session and a derived request in flight; its id.
fn fetching() -> (Scenario, RequestId) {
    let mut s = Scenario::with_config(derived_config()).to_idle();
    let effects = ask(&mut s, 1);
    let request = requests(&effects)[0];
    assert_eq!(request.url, WS);
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some("Bearer at-1")
    );
    (s, request.id)
}

fn answer(s: &mut Scenario, id: RequestId, body: &str) -> Result<Vec<Effect>, Rejected> {
    let (status, headers, body) = json(200, body);
    s.try_input(Input::HttpResponse {
        id,
        status,
        headers,
        body,
    })
}

#[test]
fn a_fetch_is_answered_while_the_session_refreshes() {
    let (mut s, derived) = fetching();
    s.get_token(2, 7200);
    assert_eq!(s.state(), "locking_session");
    let effects = answer(&mut s, derived, r#"{"token":"ws-1","expires_in":60}"#).unwrap();
    assert!(
        matches!(single_event(&effects), Event::DerivedTokenReady { waiters, .. } if waiters == &[WaiterId(1)])
    );
    assert_eq!(s.state(), "locking_session", "the refresh goes on");
}

#[test]
fn a_new_login_starts_a_fetch_under_way_again_with_the_new_token() {
    let (mut s, old) = fetching();
    let effects = s.input(Input::Login {
        method: LoginMethod::Browser,
        redirect_uri: Some(REDIRECT.into()),
    });
    let Some(Effect::OpenBrowser { url }) = effects.first() else {
        panic!("{effects:?}")
    };
    let url = url::Url::parse(url).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    s.state_param = param("state");
    s.nonce = param("nonce");
    let callback = s.callback_url();
    s.input(Input::Callback { url: callback });
    let mut body: serde_json::Value =
        serde_json::from_str(&token_body("at-2", Some("rt-2"), 3600)).unwrap();
    body["id_token"] = s.id_token("bob").into();
    let effects = s.respond(json(200, &body.to_string()));
    assert!(
        events(&effects)
            .iter()
            .any(|e| matches!(e, Event::LoggedIn { .. }))
    );
    let again = requests(&effects);
    assert_eq!(again.len(), 1, "{effects:?}");
    assert_eq!(again[0].url, WS);
    assert_eq!(
        again[0].headers.get("authorization").map(String::as_str),
        Some("Bearer at-2")
    );
    let late = answer(&mut s, old, r#"{"token":"for-alice","expires_in":60}"#);
    assert_eq!(late, Err(Rejected::UnknownRequest { id: old.0 }));
}

#[test]
fn a_logout_fails_a_fetch_under_way_and_forgets_the_cache() {
    let (mut s, first) = fetching();
    answer(&mut s, first, r#"{"token":"ws-1","expires_in":600}"#).unwrap();
    s.advance_secs(700);
    let effects = ask(&mut s, 2);
    let second = requests(&effects)[0].id;
    let effects = s.logout(true);
    let failed = events(&effects).into_iter().find_map(|e| match e {
        Event::DerivedTokenFailed { waiters, error, .. } => Some((waiters.clone(), error.clone())),
        _ => None,
    });
    assert_eq!(failed, Some((vec![WaiterId(2)], Error::NotLoggedIn)));
    let late = answer(&mut s, second, r#"{"token":"ws-2","expires_in":600}"#);
    assert!(late.is_err(), "the answer is no one's: {late:?}");
}

#[test]
fn a_cached_token_is_not_served_for_another_user_another_process_signed_in() {
    let mut s = Scenario::with_config(derived_config());
    let mut alice = session(3600);
    alice.identity = Some(Identity {
        subject: Some("alice".into()),
        ..Identity::default()
    });
    s.input(Input::SessionLoaded {
        session: Some(alice),
    });
    let id = requests(&ask(&mut s, 1))[0].id;
    answer(&mut s, id, r#"{"token":"for-alice","expires_in":600}"#).unwrap();
    // A refresh finds, under the lock, the session another process stored for bob.
    s.get_token(2, 4000);
    let mut bob = session(7200);
    bob.access_token = Secret::new("at-bob");
    bob.identity = Some(Identity {
        subject: Some("bob".into()),
        ..Identity::default()
    });
    s.input(Input::SessionLocked { session: Some(bob) });
    assert_eq!(s.state(), "idle", "bob's token serves without a refresh");
    let effects = ask(&mut s, 3);
    let request = requests(&effects);
    assert_eq!(request.len(), 1, "fetched for bob: {effects:?}");
    assert_eq!(
        request[0].headers.get("authorization").map(String::as_str),
        Some("Bearer at-bob")
    );
}

#[test]
fn waiter_ids_of_the_engines_range_are_refused() {
    let mut s = Scenario::with_config(derived_config()).to_idle();
    for input in [
        Input::GetToken {
            waiter: WaiterId(1 << 63),
            min_ttl_secs: 0,
        },
        Input::GetDerivedToken {
            waiter: WaiterId(u64::MAX),
            name: "ws".into(),
            min_ttl_secs: 0,
        },
    ] {
        let refused = s.try_input(input);
        assert!(
            matches!(&refused, Err(Rejected::Invalid { reason }) if reason.contains("engine's own")),
            "{refused:?}"
        );
    }
}

#[test]
fn derived_tokens_never_show_in_debug_output() {
    let (mut s, id) = fetching();
    let effects = answer(&mut s, id, r#"{"token":"SECRET-WS","expires_in":60}"#).unwrap();
    let shown = format!("{effects:?} {:?}", s.engine);
    assert!(!shown.contains("SECRET-WS"), "{shown}");
}

#[test]
fn random_inputs_with_derived_tokens_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let bodies = [
        "",
        "<html/>",
        r#"{"token":"w","expires_in":5}"#,
        r#"{"access_token":"w","expires_at":1}"#,
        r#"{"token":["w"]}"#,
    ];
    for _ in 0..200 {
        let mut s = Scenario::with_config(derived_config());
        for step in 0..40u64 {
            let id = RequestId(next() % 6);
            let input = match next() % 9 {
                0 => Input::SessionLoaded {
                    session: Some(session(next() % 900)),
                },
                1 | 2 => Input::GetDerivedToken {
                    waiter: WaiterId(step),
                    name: ["ws", "nope"][(next() % 2) as usize].into(),
                    min_ttl_secs: next() % 600,
                },
                3 => Input::SessionLocked {
                    session: Some(session(3600)),
                },
                4 => Input::HttpResponse {
                    id,
                    status: [200, 401, 403, 404, 500][(next() % 5) as usize],
                    headers: BTreeMap::new(),
                    body: bodies[(next() % 5) as usize].into(),
                },
                5 => Input::HttpFailed {
                    id,
                    kind: TransportErrorKind::Connect,
                    detail: String::new(),
                },
                6 => Input::Logout {
                    force: next() % 2 == 0,
                },
                _ => Input::Timeout,
            };
            s.advance_secs(next() % 5);
            let _ = s.try_input(input);
        }
        assert!(s.engine.poll_timeout().is_none_or(|at| at.0 >= START));
    }
}
