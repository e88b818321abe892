use tessera_engine::{Effect, Error, Event, Input, TransportErrorKind};

use crate::scenario::*;

#[test]
fn logout_deletes_first_then_revokes_both_tokens() {
    let mut s = Scenario::new().to_idle();
    let effects = s.logout(false);
    // Under the lock: delete, release, then the calls.
    assert_eq!(
        effects[..3],
        [
            Effect::LockSession,
            Effect::DeleteSession,
            Effect::UnlockSession
        ]
    );
    let bodies: Vec<String> = requests(&effects)
        .iter()
        .map(|r| r.body.clone().unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].contains("token=rt-1&token_type_hint=refresh_token"));
    assert!(bodies[1].contains("token=at-1&token_type_hint=access_token"));
}

#[test]
fn failing_revocation_still_logs_out_and_says_so() {
    let mut s = Scenario::new().to_revoking();
    // Request ids 1 and 2 are the two revocations.
    s.input(Input::HttpResponse {
        id: tessera_engine::RequestId(1),
        status: 503,
        headers: Default::default(),
        body: String::new(),
    });
    let effects = s.input(Input::HttpFailed {
        id: tessera_engine::RequestId(2),
        kind: TransportErrorKind::Timeout,
        detail: "slow".into(),
    });
    let Event::LoggedOut { server_calls, .. } = single_event(&effects) else {
        panic!()
    };
    assert_eq!(server_calls.len(), 2);
    assert!(server_calls.iter().all(|c| c.error.is_some()));
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn token_requests_during_logout_fail() {
    let mut s = Scenario::new().to_revoking();
    let effects = s.get_token(5, 0);
    assert!(matches!(
        single_event(&effects),
        Event::TokenFailed {
            error: Error::NotLoggedIn,
            ..
        }
    ));
}

#[test]
fn force_only_deletes_locally() {
    let mut s = Scenario::new().to_idle();
    let effects = s.logout(true);
    assert_eq!(
        effects[..3],
        [
            Effect::LockSession,
            Effect::DeleteSession,
            Effect::UnlockSession
        ]
    );
    assert!(requests(&effects).is_empty());
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn logout_revokes_what_storage_holds_under_the_lock() {
    let mut s = Scenario::new().to_idle();
    let mut rotated = s.engine.session().cloned().unwrap();
    rotated.access_token = tessera_engine::Secret::new("at-9");
    rotated.refresh_token = Some(tessera_engine::Secret::new("rt-9"));
    let effects = s.input(Input::Logout { force: false });
    assert_eq!(effects, [Effect::LockSession]);
    // Another process refreshed meanwhile: the logout revokes its tokens.
    let effects = s.input(Input::SessionLocked {
        session: Some(rotated),
    });
    let bodies: Vec<String> = requests(&effects)
        .iter()
        .map(|r| r.body.clone().unwrap())
        .collect();
    assert!(bodies[0].contains("token=rt-9&"), "{bodies:?}");
    assert!(bodies[1].contains("token=at-9&"), "{bodies:?}");
}

#[test]
fn a_logout_whose_lock_fails_still_logs_out_the_session_in_memory() {
    let mut s = Scenario::new().to_idle();
    s.input(Input::Logout { force: false });
    let effects = s.input(Input::StorageFailed {
        detail: "lock timed out".into(),
    });
    assert_eq!(effects[0], Effect::DeleteSession);
    assert_eq!(requests(&effects).len(), 2);
    assert_eq!(s.state(), "revoking");
}
