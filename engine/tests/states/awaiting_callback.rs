use tessera_engine::{CallbackProblem, Error, Event, Input, Rejected};

use crate::scenario::*;

#[test]
fn authorization_url_carries_pkce_state_and_nonce() {
    let s = Scenario::new().to_awaiting_callback();
    assert_eq!(s.state_param.as_ref().map(String::len), Some(22));
    assert_eq!(s.nonce.as_ref().map(String::len), Some(22));
    assert_eq!(s.engine.poll_timeout(), Some(s.now.plus_secs(300)));
}

#[test]
fn a_good_redirect_exchanges_the_code_with_the_verifier() {
    let mut s = Scenario::new().to_awaiting_callback();
    let url = s.callback_url();
    let effects = s.input(Input::Callback { url });
    let request = requests(&effects)[0];
    let body = request.body.as_deref().unwrap();
    assert!(
        body.starts_with("grant_type=authorization_code&code=code-1&"),
        "{body}"
    );
    assert!(body.contains("code_verifier="));
    assert_eq!(s.state(), "exchanging_code");
}

#[test]
fn a_wrong_state_is_ignored_and_the_login_still_waits() {
    let mut s = Scenario::new().to_awaiting_callback();
    let stray = s.try_input(Input::Callback {
        url: format!("{REDIRECT}?code=c&state=forged"),
    });
    assert!(
        matches!(&stray, Err(Rejected::Invalid { reason }) if reason.contains("does not match")),
        "{stray:?}"
    );
    assert_eq!(s.state(), "awaiting_callback");
    let url = s.callback_url();
    s.input(Input::Callback { url });
    assert_eq!(s.state(), "exchanging_code");
}

#[test]
fn a_wrong_iss_is_a_mix_up() {
    let mut s = Scenario::new().to_awaiting_callback();
    let state = s.state_param.clone().unwrap();
    let effects = s.input(Input::Callback {
        url: format!("{REDIRECT}?code=c&state={state}&iss=https://evil.example"),
    });
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::Callback {
                problem: CallbackProblem::IssuerMismatch { .. }
            }
        }
    ));
}

#[test]
fn an_error_redirect_reports_the_oauth_error() {
    let mut s = Scenario::new().to_awaiting_callback();
    let state = s.state_param.clone().unwrap();
    let effects = s.input(Input::Callback {
        url: format!("{REDIRECT}?error=access_denied&error_description=User+said+no&state={state}"),
    });
    let Event::LoginFailed {
        error: Error::OAuth { error, .. },
    } = single_event(&effects)
    else {
        panic!()
    };
    assert_eq!(error.code, tessera_engine::ErrorCode::AccessDenied);
    assert_eq!(error.description.as_deref(), Some("User said no"));
}

#[test]
fn unreadable_paste_is_rejected_and_the_login_goes_on() {
    let mut s = Scenario::new().to_awaiting_callback();
    let result = s.try_input(Input::PastedCode {
        text: "two words".into(),
    });
    assert!(matches!(result, Err(Rejected::Invalid { .. })));
    assert_eq!(s.state(), "awaiting_callback");
    let state = s.state_param.clone().unwrap();
    s.input(Input::PastedCode {
        text: format!("code-1#{state}"),
    });
    assert_eq!(s.state(), "exchanging_code");
}

#[test]
fn the_deadline_ends_the_login() {
    let mut s = Scenario::new().to_awaiting_callback();
    s.advance_secs(10);
    assert!(
        s.input(Input::Timeout).is_empty(),
        "an early timeout changes nothing"
    );
    let effects = s.fire_timer();
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::CallbackTimeout
        }
    ));
    assert_eq!(s.engine.poll_timeout(), None);
}

#[test]
fn cancel_returns_to_where_the_login_started() {
    let mut s = Scenario::new().to_awaiting_callback();
    let effects = s.input(Input::Cancel);
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::Cancelled
        }
    ));
    assert_eq!(s.state(), "logged_out");
}
