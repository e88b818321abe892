use tessera_engine::{Error, Event, Input, LoginMethod, StoredSession};

use crate::scenario::*;

#[test]
fn commands_wait_for_storage_then_run_in_order() {
    let mut s = Scenario::new();
    assert!(
        s.get_token(1, 0).is_empty(),
        "nothing happens before storage answers"
    );
    assert!(
        s.input(Input::Login {
            method: LoginMethod::Device,
            redirect_uri: None
        })
        .is_empty()
    );
    let effects = s.input(Input::SessionLoaded { session: None });
    // The token request fails (no session), then the deferred login starts.
    assert!(matches!(
        events(&effects)[0],
        Event::TokenFailed {
            error: Error::NotLoggedIn,
            ..
        }
    ));
    assert_eq!(requests(&effects).len(), 1);
    assert_eq!(s.state(), "requesting_device_code");
}

#[test]
fn a_session_for_another_client_is_not_adopted() {
    let mut s = Scenario::new();
    let foreign = StoredSession {
        client_id: "someone-else".into(),
        ..session(3600)
    };
    s.input(Input::SessionLoaded {
        session: Some(foreign),
    });
    assert_eq!(s.state(), "logged_out");
    assert!(s.engine.session().is_none());
}

#[test]
fn a_session_from_a_newer_format_is_not_adopted() {
    let mut s = Scenario::new();
    s.input(Input::SessionLoaded {
        session: Some(StoredSession {
            version: 99,
            ..session(3600)
        }),
    });
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn unreadable_storage_means_logged_out() {
    let mut s = Scenario::new();
    s.input(Input::StorageFailed {
        detail: "corrupt file".into(),
    });
    assert_eq!(s.state(), "logged_out");
}
