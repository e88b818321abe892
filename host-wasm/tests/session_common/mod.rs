//! The `Session` class in a browser context without extension APIs (a page, a service
//! worker): its default storage is IndexedDB. A session written there is loaded by
//! `Session.open`, served by `getAccessToken` without any request (the token is valid
//! for an hour and nothing listens on the issuer's port), survives a second `open` (a
//! worker restart), and `logout({force: true})` removes it.

use js_sys::{Object, Reflect};
use tessera_wasm::{Session, SessionOptions, default_storage};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const KEY: &str = "tessera.session.session-test";

async fn settle(value: Result<JsValue, JsValue>) -> JsValue {
    JsFuture::from(js_sys::Promise::resolve(
        &value.expect("storage call threw"),
    ))
    .await
    .expect("storage promise rejected")
}

fn config() -> JsValue {
    // Port 9 (discard): nothing may be fetched in this test.
    js_sys::JSON::parse(
        r#"{"issuer":"http://127.0.0.1:9","client_id":"session-test","scopes":["openid"]}"#,
    )
    .unwrap()
}

fn get(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &name.into()).unwrap()
}

async fn call(promise: js_sys::Promise) -> JsValue {
    JsFuture::from(promise)
        .await
        .unwrap_or_else(|error| panic!("rejected: {:?}", Reflect::get(&error, &"message".into())))
}

pub async fn default_storage_is_indexeddb_and_keeps_the_session() {
    // Chromium pages have a `chrome` object, but no extension storage.
    let chrome = get(&js_sys::global(), "chrome");
    assert!(
        chrome.is_undefined() || get(&chrome, "storage").is_undefined(),
        "this test is for contexts without extension APIs"
    );
    let storage = default_storage().expect("IndexedDB is available");
    let now = js_sys::Date::now();
    let stored = format!(
        r#"{{"version":1,"issuer":"http://127.0.0.1:9","client_id":"session-test","access_token":"stored-access-token","refresh_token":"stored-refresh-token","obtained_at":{},"expires_at":{},"scopes":["openid"]}}"#,
        now as u64,
        now as u64 + 3_600_000
    );
    settle(storage.set(KEY, &stored)).await;

    let options: SessionOptions = Object::new().unchecked_into();
    for _restart in 0..2 {
        let session = Session::connect(&config(), Some(options.clone()))
            .await
            .unwrap_or_else(|e| panic!("open failed: {e:?}"));
        let status = call(session.status()).await;
        assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
        assert_eq!(get(&status, "storage_problem"), JsValue::UNDEFINED);
        let token = call(session.get_access_token(None)).await;
        assert_eq!(token.as_string().as_deref(), Some("stored-access-token"));
        session.close();
    }

    let session = Session::connect(&config(), Some(options)).await.unwrap();
    let force: tessera_wasm::LogoutOptions = js_sys::JSON::parse(r#"{"force":true}"#)
        .unwrap()
        .unchecked_into();
    call(session.logout(Some(force))).await;
    let left = settle(storage.get(KEY)).await;
    assert!(
        left.is_null() || left.is_undefined(),
        "still stored: {left:?}"
    );
    let status = call(session.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::FALSE);
    session.close();
}
