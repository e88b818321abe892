use tessera_engine::{Effect, Event, Input, LogoutReason, Secret, StoredSession};

use crate::scenario::*;

#[test]
fn the_same_session_on_reread_ends_it() {
    let mut s = Scenario::new().to_confirming_grant_loss();
    let stored = s.engine.session().cloned();
    let effects = s.input(Input::SessionLoaded { session: stored });
    assert_eq!(effects[0], Effect::DeleteSession);
    assert_eq!(effects[1], Effect::UnlockSession);
    assert!(matches!(
        events(&effects).last(),
        Some(Event::LoggedOut {
            reason: LogoutReason::SessionEnded { .. },
            ..
        })
    ));
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn a_sibling_rotation_found_on_reread_is_used() {
    let mut s = Scenario::new().to_confirming_grant_loss();
    let rotated = StoredSession {
        refresh_token: Some(Secret::new("rt-sibling")),
        ..session(60)
    };
    let effects = s.input(Input::SessionLoaded {
        session: Some(rotated),
    });
    let body = requests(&effects)[0].body.clone().unwrap();
    assert!(body.contains("refresh_token=rt-sibling"), "{body}");
    assert_eq!(s.state(), "refreshing");
}
