use tessera_engine::{Effect, Error, Event, Input, Secret, StoredSession, WaiterId};

use crate::scenario::*;

#[test]
fn a_fresh_token_is_served_without_any_request() {
    let mut s = Scenario::new().to_idle();
    let effects = s.get_token(1, 60);
    assert!(
        matches!(single_event(&effects), Event::TokenReady { access_token, .. } if access_token.expose() == "at-1")
    );
    assert_eq!(s.state(), "idle");
}

#[test]
fn asking_for_more_lifetime_than_is_left_refreshes() {
    let mut s = Scenario::new().to_idle();
    let effects = s.get_token(1, 3600);
    assert_eq!(effects, vec![Effect::LockSession]);
}

#[test]
fn the_refresh_timer_fires_a_buffer_before_expiry() {
    let s = Scenario::new().to_idle();
    // 3600 s token, default buffer 300 s.
    assert_eq!(s.engine.poll_timeout(), Some(s.now.plus_secs(3300)));
}

#[test]
fn the_buffer_shrinks_for_short_lived_tokens() {
    let mut s = Scenario::new();
    s.input(Input::SessionLoaded {
        session: Some(session(60)),
    });
    assert_eq!(
        s.engine.poll_timeout(),
        Some(s.now.plus_secs(45)),
        "a quarter of 60 s"
    );
}

#[test]
fn the_timer_starts_a_background_refresh() {
    let mut s = Scenario::new().to_idle();
    let effects = s.fire_timer();
    assert_eq!(effects, vec![Effect::LockSession]);
    assert_eq!(s.state(), "locking_session");
}

#[test]
fn a_401_on_an_old_token_serves_the_current_one() {
    let mut s = Scenario::new().to_idle();
    let effects = s.input(Input::TokenRejected {
        waiter: WaiterId(3),
        access_token: Secret::new("at-0"),
    });
    assert!(matches!(single_event(&effects), Event::TokenReady { .. }));
}

#[test]
fn a_401_on_the_current_token_forces_a_refresh() {
    let mut s = Scenario::new().to_idle();
    let effects = s.input(Input::TokenRejected {
        waiter: WaiterId(3),
        access_token: Secret::new("at-1"),
    });
    assert_eq!(effects, vec![Effect::LockSession]);
}

#[test]
fn without_a_refresh_token_an_expired_session_needs_login() {
    let mut s = Scenario::new();
    s.input(Input::SessionLoaded {
        session: Some(StoredSession {
            refresh_token: None,
            ..session(60)
        }),
    });
    assert_eq!(s.engine.poll_timeout(), None, "nothing to refresh with");
    s.advance_secs(61);
    let effects = s.get_token(1, 0);
    assert!(matches!(
        single_event(&effects),
        Event::TokenFailed {
            error: Error::LoginRequired { .. },
            ..
        }
    ));
}

#[test]
fn status_projects_the_session() {
    let mut s = Scenario::new().to_idle();
    s.advance_secs(60);
    let status = s.engine.status(s.now);
    assert!(status.logged_in && status.refresh_token_present);
    assert_eq!(status.expires_in_secs, Some(3540));
    assert_eq!(status.state, "idle");
}
