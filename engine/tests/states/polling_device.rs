use tessera_engine::{Error, Event, Input, TransportErrorKind};

use crate::scenario::*;

fn next_wait(s: &Scenario) -> u64 {
    s.engine.poll_timeout().unwrap().0 - s.now.0
}

#[test]
fn authorization_pending_keeps_the_interval() {
    let mut s = Scenario::new().to_polling_device();
    s.respond(json(400, r#"{"error":"authorization_pending"}"#));
    assert_eq!(s.state(), "waiting_to_poll");
    assert_eq!(next_wait(&s), 5_000);
}

#[test]
fn slow_down_adds_five_seconds_each_time() {
    let mut s = Scenario::new().to_polling_device();
    s.respond(json(400, r#"{"error":"slow_down"}"#));
    assert_eq!(next_wait(&s), 10_000);
    s.fire_timer();
    s.respond(json(400, r#"{"error":"slow_down"}"#));
    assert_eq!(next_wait(&s), 15_000);
    s.fire_timer();
    s.respond(json(400, r#"{"error":"authorization_pending"}"#));
    assert_eq!(next_wait(&s), 15_000, "the slower pace stays");
}

#[test]
fn errors_sent_with_status_200_are_understood() {
    let mut s = Scenario::new().to_polling_device();
    s.respond(json(200, r#"{"error":"authorization_pending"}"#));
    assert_eq!(s.state(), "waiting_to_poll");
}

#[test]
fn a_network_failure_doubles_the_interval() {
    let mut s = Scenario::new().to_polling_device();
    let id = s.pending.unwrap();
    s.input(Input::HttpFailed {
        id,
        kind: TransportErrorKind::Timeout,
        detail: "timed out".into(),
    });
    assert_eq!(next_wait(&s), 10_000);
}

#[test]
fn access_denied_ends_the_login() {
    let mut s = Scenario::new().to_polling_device();
    let effects = s.respond(json(400, r#"{"error":"access_denied"}"#));
    let Event::LoginFailed { error } = single_event(&effects) else {
        panic!()
    };
    assert_eq!(error.kind(), tessera_engine::ErrorKind::Denied);
    assert_eq!(s.state(), "logged_out");
}

#[test]
fn approval_logs_in() {
    let mut s = Scenario::new().to_polling_device();
    let effects = s.respond(json(200, &token_body("at-d", Some("rt-d"), 3600)));
    assert!(
        events(&effects)
            .iter()
            .any(|e| matches!(e, Event::LoggedIn { .. }))
    );
    assert_eq!(s.state(), "idle");
}

#[test]
fn a_late_response_after_expiry_is_rejected() {
    let mut s = Scenario::new().to_polling_device();
    let id = s.pending.unwrap();
    s.advance_secs(700);
    let effects = s.input(Input::Timeout);
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::DeviceCodeExpired
        }
    ));
    let late = s.try_input(Input::HttpResponse {
        id,
        status: 200,
        headers: Default::default(),
        body: token_body("x", None, 60),
    });
    assert!(late.is_err());
    assert!(s.engine.session().is_none());
}
