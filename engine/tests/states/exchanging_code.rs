use tessera_engine::{Effect, Error, Event, IdTokenProblem, Input, ResponseProblem};

use crate::scenario::*;

#[test]
fn tokens_are_persisted_before_the_app_hears_of_them() {
    let mut s = Scenario::new().to_exchanging_code();
    let id_token = s.id_token("alice");
    let body = serde_json::json!({"access_token":"at-9","token_type":"bearer","expires_in":3600,"refresh_token":"rt-9","id_token":id_token}).to_string();
    let effects = s.respond(json(200, &body));
    let Effect::PersistSession { session } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(session.access_token.expose(), "at-9");
    assert_eq!(
        session.identity.as_ref().and_then(|i| i.subject.as_deref()),
        Some("alice")
    );
    assert!(matches!(&effects[1], Effect::Event(Event::LoggedIn { .. })));
    assert_eq!(s.state(), "idle");
}

#[test]
fn a_replayed_nonce_is_refused() {
    let mut s = Scenario::new().to_exchanging_code();
    s.nonce = Some("someone-elses-nonce".into());
    let id_token = s.id_token("mallory");
    let body = serde_json::json!({"access_token":"at","token_type":"bearer","id_token":id_token})
        .to_string();
    let effects = s.respond(json(200, &body));
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::IdToken {
                problem: IdTokenProblem::NonceMismatch
            }
        }
    ));
    assert!(s.engine.session().is_none());
}

#[test]
fn invalid_grant_fails_the_login_without_retry() {
    let mut s = Scenario::new().to_exchanging_code();
    let effects = s.respond(json(
        400,
        r#"{"error":"invalid_grant","error_description":"code reused"}"#,
    ));
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::OAuth { status: 400, .. }
        }
    ));
    assert!(requests(&effects).is_empty());
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn an_html_error_page_is_named_as_such() {
    let mut s = Scenario::new().to_exchanging_code();
    let mut response = json(502, "<html><body>Bad gateway</body></html>");
    response.1.insert("content-type".into(), "text/html".into());
    let effects = s.respond(response);
    let Event::LoginFailed { error } = single_event(&effects) else {
        panic!()
    };
    assert!(matches!(
        error,
        Error::Response {
            problem: ResponseProblem::NotAnObject { .. },
            status: 502,
            ..
        }
    ));
    assert!(error.to_string().contains("text/html"), "{error}");
}

#[test]
fn a_failed_login_keeps_the_previous_session() {
    let mut s = Scenario::new().to_idle();
    let before = s.engine.session().cloned();
    s.input(Input::Login {
        method: tessera_engine::LoginMethod::Browser,
        redirect_uri: Some(REDIRECT.into()),
    });
    s.input(Input::Cancel);
    assert_eq!(s.state(), "idle");
    assert_eq!(s.engine.session().cloned(), before);
}
