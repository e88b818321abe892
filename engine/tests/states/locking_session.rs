use tessera_engine::{Effect, Error, Event, Input, LogoutReason, Secret, StoredSession};

use crate::scenario::*;

#[test]
fn a_sibling_refresh_is_adopted_without_a_request() {
    let mut s = Scenario::new().to_locking_session();
    let sibling = StoredSession {
        access_token: Secret::new("at-sibling"),
        refresh_token: Some(Secret::new("rt-sibling")),
        obtained_at: s.now,
        expires_at: s.now.plus_secs(3600),
        ..session(60)
    };
    let effects = s.input(Input::SessionLocked {
        session: Some(sibling),
    });
    assert_eq!(effects[0], Effect::UnlockSession);
    assert!(
        matches!(&effects[1], Effect::Event(Event::TokenReady { access_token, .. }) if access_token.expose() == "at-sibling")
    );
    assert!(requests(&effects).is_empty());
    assert_eq!(s.state(), "idle");
}

#[test]
fn an_empty_store_means_another_process_logged_out() {
    let mut s = Scenario::new().to_locking_session();
    let effects = s.input(Input::SessionLocked { session: None });
    assert_eq!(effects[0], Effect::UnlockSession);
    assert!(matches!(
        &effects[1],
        Effect::Event(Event::TokenFailed {
            error: Error::LoginRequired { .. },
            ..
        })
    ));
    assert!(matches!(
        &effects[2],
        Effect::Event(Event::LoggedOut {
            reason: LogoutReason::LoggedOutElsewhere,
            ..
        })
    ));
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn waiters_join_while_the_lock_is_taken() {
    let mut s = Scenario::new().to_locking_session();
    assert!(s.get_token(2, 0).is_empty());
    assert!(s.get_token(3, 0).is_empty());
    let stored = s.engine.session().cloned();
    s.input(Input::SessionLocked { session: stored });
    let effects = s.respond(json(200, &token_body("at-2", None, 3600)));
    let Event::TokenReady { waiters, .. } = single_event(&effects) else {
        panic!()
    };
    assert_eq!(
        waiters.iter().map(|w| w.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn a_lock_failure_reports_and_returns_to_idle() {
    let mut s = Scenario::new().to_locking_session();
    let effects = s.input(Input::StorageFailed {
        detail: "lock timed out".into(),
    });
    assert_eq!(
        effects[0],
        Effect::UnlockSession,
        "a lock still being acquired is released"
    );
    assert!(events(&effects).iter().any(|e| matches!(
        e,
        Event::TokenFailed {
            error: Error::Storage { .. },
            ..
        }
    )));
    assert_eq!(s.state(), "idle");
}

#[test]
fn logout_waits_for_the_refresh_to_finish() {
    let mut s = Scenario::new().to_locking_session();
    assert!(s.input(Input::Logout { force: true }).is_empty());
    let stored = s.engine.session().cloned();
    s.input(Input::SessionLocked { session: stored });
    let effects = s.respond(json(200, &token_body("at-2", Some("rt-2"), 3600)));
    // Persisted, unlocked, waiter served, then the deferred logout takes the lock again
    // and deletes what storage holds.
    assert!(matches!(effects[0], Effect::PersistSession { .. }));
    assert_eq!(effects.last(), Some(&Effect::LockSession));
    let stored = s.engine.session().cloned();
    let effects = s.input(Input::SessionLocked { session: stored });
    assert!(effects.contains(&Effect::DeleteSession));
    assert_eq!(s.state(), "logged_out");
}
