//! The `Engine` class as JavaScript uses it (JSON in, JSON out), under node.
#![cfg(all(target_family = "wasm", feature = "engine-api"))]

use tessera_wasm::Engine;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const NOW: f64 = 1_700_000_000_000.0;

fn message(e: wasm_bindgen::JsError) -> String {
    JsValue::from(e)
        .dyn_into::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default()
}

fn drain(engine: &mut Engine) -> Vec<serde_json::Value> {
    std::iter::from_fn(|| engine.poll_effect().expect("serializable"))
        .map(|e| serde_json::from_str(&e).expect("an effect is JSON"))
        .collect()
}

#[wasm_bindgen_test]
fn a_token_request_without_a_session_fails_with_an_event() {
    let config = r#"{"issuer":"https://op.example","client_id":"app"}"#;
    let mut engine = Engine::new(config, &[7; 32], NOW).expect("valid");
    assert_eq!(
        drain(&mut engine),
        [serde_json::json!({"type": "load_session"})]
    );
    engine
        .handle(NOW, r#"{"type":"session_loaded"}"#)
        .expect("accepted");
    assert_eq!(engine.state_name(), "logged_out");
    engine
        .handle(NOW + 5.0, r#"{"type":"get_token","waiter":1}"#)
        .expect("accepted");
    let effects = drain(&mut engine);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(effects[0]["event"], "token_failed");
    assert_eq!(effects[0]["error"]["type"], "not_logged_in");
    assert_eq!(engine.poll_timeout(), None);
    let status: serde_json::Value =
        serde_json::from_str(&engine.status(NOW).expect("status")).expect("JSON");
    assert!(status.is_object(), "{status}");
}

#[wasm_bindgen_test]
fn bad_arguments_throw_errors_that_say_which() {
    assert!(
        message(Engine::new(r#"{"client_id": 7}"#, &[0; 32], NOW).unwrap_err())
            .starts_with("config:")
    );
    let config = r#"{"client_id":"app"}"#;
    assert!(message(Engine::new(config, &[0; 31], NOW).unwrap_err()).contains("32 bytes"));
    assert!(message(Engine::new(config, &[0; 32], f64::NAN).unwrap_err()).starts_with("time:"));
    let mut engine = Engine::new(config, &[0; 32], NOW).expect("valid");
    assert!(
        message(engine.handle(NOW, r#"{"type":"nonsense"}"#).unwrap_err()).starts_with("input:")
    );
    // An answer to a request that was never made is refused, and nothing changes.
    let refused = engine
        .handle(
            NOW,
            r#"{"type":"http_response","id":9,"status":200,"headers":{},"body":""}"#,
        )
        .unwrap_err();
    assert!(!message(refused).is_empty());
    assert_eq!(engine.state_name(), "loading_session");
}

#[wasm_bindgen_test]
fn the_version_is_the_workspace_version() {
    assert_eq!(tessera_wasm::engine_version(), env!("CARGO_PKG_VERSION"));
}
