use tessera_engine::{Config, Effect, Error, Event, Input, LoginMethod, LogoutReason};

use crate::scenario::*;

#[test]
fn get_token_fails_with_not_logged_in() {
    let mut s = Scenario::new().to_logged_out();
    let effects = s.get_token(7, 0);
    assert!(
        matches!(single_event(&effects), Event::TokenFailed { waiters, error: Error::NotLoggedIn } if waiters[0].0 == 7)
    );
}

#[test]
fn logout_clears_storage_even_without_a_session() {
    let mut s = Scenario::new().to_logged_out();
    let effects = s.logout(false);
    assert_eq!(
        effects[..3],
        [
            Effect::LockSession,
            Effect::DeleteSession,
            Effect::UnlockSession
        ]
    );
    assert!(matches!(
        &effects[3],
        Effect::Event(Event::LoggedOut {
            reason: LogoutReason::Requested,
            ..
        })
    ));
}

#[test]
fn browser_login_needs_a_redirect_uri() {
    let mut s = Scenario::new().to_logged_out();
    let effects = s.input(Input::Login {
        method: LoginMethod::Browser,
        redirect_uri: None,
    });
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::Config { .. }
        }
    ));
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn login_without_endpoints_or_issuer_names_what_to_configure() {
    let mut s = Scenario::with_config(Config {
        client_id: "c".into(),
        ..Config::default()
    })
    .to_logged_out();
    let effects = s.input(Input::Login {
        method: LoginMethod::Device,
        redirect_uri: None,
    });
    let Event::LoginFailed { error } = single_event(&effects) else {
        panic!()
    };
    let message = error.to_string();
    assert!(message.contains("device_authorization"), "{message}");
}

#[test]
fn paste_login_prompts_instead_of_opening_a_browser() {
    let mut s = Scenario::with_config(Config {
        redirect_uri: Some("https://op.example/code".into()),
        ..config()
    })
    .to_logged_out();
    let effects = s.input(Input::Login {
        method: LoginMethod::Paste,
        redirect_uri: None,
    });
    assert!(
        matches!(&effects[..], [Effect::PromptForCode { url }] if url.contains("redirect_uri=https%3A%2F%2Fop.example%2Fcode"))
    );
}
