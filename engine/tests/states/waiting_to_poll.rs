use tessera_engine::{Effect, Error, Event, Input, LoginMethod};

use crate::scenario::*;

#[test]
fn the_user_code_is_shown_grouped_for_reading() {
    let mut s = Scenario::new().to_logged_out();
    s.input(Input::Login {
        method: LoginMethod::Device,
        redirect_uri: None,
    });
    let effects = s.respond(json(
        200,
        r#"{"device_code":"dc","user_code":"WDJBMJHT","verification_url":"https://op.example/device","expires_in":600}"#,
    ));
    let Effect::ShowUserCode(code) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(code.user_code, "WDJBMJHT", "shown exactly as issued");
    assert_eq!(
        code.verification_uri, "https://op.example/device",
        "the misspelt member is accepted"
    );
    assert_eq!(
        s.engine.poll_timeout(),
        Some(s.now.plus_secs(5)),
        "default interval"
    );
}

#[test]
fn polls_at_the_interval() {
    let mut s = Scenario::new().to_waiting_to_poll();
    let polled_at = s.engine.poll_timeout().unwrap();
    let effects = s.fire_timer();
    assert_eq!(s.now, polled_at);
    let body = requests(&effects)[0].body.clone().unwrap();
    assert!(
        body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
        "{body}"
    );
}

#[test]
fn the_device_code_expires_client_side() {
    let mut s = Scenario::new().to_waiting_to_poll();
    s.advance_secs(601);
    let effects = s.input(Input::Timeout);
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::DeviceCodeExpired
        }
    ));
}
