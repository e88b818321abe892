use tessera_engine::{Effect, Error, Event, Input, TransportErrorKind};

use crate::scenario::*;

#[test]
fn rotation_replaces_the_refresh_token() {
    let mut s = Scenario::new().to_refreshing();
    let effects = s.respond(json(200, &token_body("at-2", Some("rt-2"), 3600)));
    let Effect::PersistSession { session } = &effects[0] else {
        panic!()
    };
    assert_eq!(session.refresh_token.as_ref().unwrap().expose(), "rt-2");
    assert_eq!(effects[1], Effect::UnlockSession);
}

#[test]
fn without_a_new_refresh_token_the_old_one_stays() {
    let mut s = Scenario::new().to_refreshing();
    let effects = s.respond(json(200, &token_body("at-2", None, 3600)));
    let Effect::PersistSession { session } = &effects[0] else {
        panic!()
    };
    assert_eq!(session.refresh_token.as_ref().unwrap().expose(), "rt-1");
    assert_eq!(
        session.scopes,
        vec!["openid", "offline_access"],
        "absent scope keeps the old one"
    );
}

#[test]
fn invalid_grant_rereads_storage_before_giving_up() {
    let mut s = Scenario::new().to_refreshing();
    let effects = s.respond(json(400, r#"{"error":"invalid_grant"}"#));
    assert_eq!(effects, vec![Effect::LoadSession]);
    assert_eq!(s.state(), "confirming_grant_loss");
}

#[test]
fn a_server_error_backs_off_while_the_token_is_valid() {
    let mut s = Scenario::new();
    s.input(Input::SessionLoaded {
        session: Some(session(3600)),
    });
    s.fire_timer();
    let stored = s.engine.session().cloned();
    s.input(Input::SessionLocked { session: stored });
    let effects = s.respond(json(503, "<html>down</html>"));
    assert_eq!(effects[0], Effect::UnlockSession);
    let Event::RefreshFailed { retry_at, .. } = single_event(&effects) else {
        panic!()
    };
    assert_eq!(*retry_at, Some(s.now.plus_secs(1)));
    assert_eq!(s.engine.poll_timeout(), Some(s.now.plus_secs(1)));
    // Second failure: 2 s.
    s.fire_timer();
    let stored = s.engine.session().cloned();
    s.input(Input::SessionLocked { session: stored });
    let id = s.pending.unwrap();
    s.input(Input::HttpFailed {
        id,
        kind: TransportErrorKind::Connect,
        detail: "refused".into(),
    });
    assert_eq!(s.engine.poll_timeout(), Some(s.now.plus_secs(2)));
}

#[test]
fn an_expired_token_and_a_failure_fail_the_waiters_but_keep_the_session() {
    let mut s = Scenario::new().to_refreshing();
    let effects = s.respond(json(500, r#"{"error":"server_error"}"#));
    assert!(events(&effects).iter().any(|e| matches!(
        e,
        Event::TokenFailed {
            error: Error::OAuth { .. },
            ..
        }
    )));
    assert!(!effects.contains(&Effect::DeleteSession));
    assert!(s.engine.session().is_some());
    assert_eq!(
        s.engine.poll_timeout(),
        None,
        "no background retries once expired"
    );
}
