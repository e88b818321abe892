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

// Encryption at rest (security issue 12, finding 10). The default storage holds the
// session sealed with AES-GCM under a non-extractable WebCrypto key kept in IndexedDB
// (database "tessera-keys"); see host-wasm/README.md, "Threat model".

const SEALED_PREFIX: &str = "tessera-aes-gcm.1.";

/// A plaintext session (the format before encryption at rest) for `client_id`, valid for
/// an hour, with recognisable tokens.
fn plaintext_session(client_id: &str) -> String {
    let now = js_sys::Date::now() as u64;
    format!(
        r#"{{"version":1,"issuer":"http://127.0.0.1:9","client_id":"{client_id}","access_token":"{client_id}-access-token","refresh_token":"{client_id}-refresh-token","obtained_at":{now},"expires_at":{},"scopes":["openid"]}}"#,
        now + 3_600_000
    )
}

fn config_for(client_id: &str) -> JsValue {
    js_sys::JSON::parse(&format!(
        r#"{{"issuer":"http://127.0.0.1:9","client_id":"{client_id}","scopes":["openid"]}}"#
    ))
    .unwrap()
}

fn options(json: &str) -> SessionOptions {
    js_sys::JSON::parse(json).unwrap().unchecked_into()
}

async fn raw(key: &str) -> Option<String> {
    let storage = default_storage().unwrap();
    settle(storage.get(key)).await.as_string()
}

async fn put_raw(key: &str, value: &str) {
    settle(default_storage().unwrap().set(key, value)).await;
}

async fn open(client_id: &str, options_json: &str) -> Session {
    Session::connect(&config_for(client_id), Some(options(options_json)))
        .await
        .unwrap_or_else(|e| panic!("open failed: {e:?}"))
}

async fn rejection(promise: js_sys::Promise) -> JsValue {
    match JsFuture::from(promise).await {
        Ok(value) => panic!("resolved with {value:?}, expected a rejection"),
        Err(error) => error,
    }
}

/// A session stored in plaintext by an older tessera is read, rewritten sealed at open
/// (neither token left in clear), and the sealed value is read back after a restart.
pub async fn plaintext_session_is_migrated_and_read_back_encrypted() {
    let client = "migrate-test";
    let key = format!("tessera.session.{client}");
    put_raw(&key, &plaintext_session(client)).await;

    let session = open(client, "{}").await;
    let status = call(session.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
    assert_eq!(get(&status, "storage_warning"), JsValue::UNDEFINED);
    let sealed = raw(&key).await.expect("still stored");
    assert!(
        sealed.starts_with(SEALED_PREFIX),
        "not rewritten encrypted: {sealed:.40}…"
    );
    for secret in ["refresh-token", "access-token", "\"version\""] {
        assert!(!sealed.contains(secret), "{secret} in clear in storage");
    }
    let token = call(session.get_access_token(None)).await;
    assert_eq!(token.as_string().unwrap(), format!("{client}-access-token"));
    session.close();

    // Round trip: a new Session (a worker restart) decrypts what the first one sealed.
    let again = open(client, "{}").await;
    let status = call(again.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
    assert_eq!(get(&status, "refresh_token_present"), JsValue::TRUE);
    let token = call(again.get_access_token(None)).await;
    assert_eq!(token.as_string().unwrap(), format!("{client}-access-token"));
    assert_eq!(
        raw(&key).await.as_deref(),
        Some(sealed.as_str()),
        "read, not rewritten"
    );
    again.close();
}

/// A sealed value that was altered, names a key this profile does not have, or is not
/// well formed: `open` resolves, `status()` names the kind (`storage_error`), the session
/// is treated as absent (`not_logged_in`), and the value is left byte for byte.
pub async fn undecryptable_session_is_a_typed_error_and_left_as_it_was() {
    let client = "corrupt-test";
    let key = format!("tessera.session.{client}");
    put_raw(&key, &plaintext_session(client)).await;
    open(client, "{}").await.close(); // sealed now
    let sealed = raw(&key).await.unwrap();
    assert!(sealed.starts_with(SEALED_PREFIX), "{sealed:.40}");

    let parts: Vec<&str> = sealed[SEALED_PREFIX.len()..].split('.').collect();
    assert_eq!(parts.len(), 3, "key id, iv, ciphertext");
    let (id, iv, data) = (parts[0], parts[1], parts[2]);
    let middle = data.len() / 2;
    let flipped = if &data[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let altered = format!(
        "{SEALED_PREFIX}{id}.{iv}.{}{flipped}{}",
        &data[..middle],
        &data[middle + 1..]
    );
    let other_key = format!("{SEALED_PREFIX}{id}x.{iv}.{data}");
    let cases = [
        (altered, "undecryptable", "does not decrypt"),
        (other_key, "key_missing", "no longer has"),
        (
            format!("{SEALED_PREFIX}garbage"),
            "undecryptable",
            "not a well-formed",
        ),
    ];
    for (value, kind, says) in &cases {
        put_raw(&key, value).await;
        let session = open(client, "{}").await;
        let status = call(session.status()).await;
        assert_eq!(
            get(&status, "logged_in"),
            JsValue::FALSE,
            "{kind}: {status:?}"
        );
        assert_eq!(
            get(&status, "storage_error").as_string().as_deref(),
            Some(*kind),
            "{status:?}"
        );
        let problem = get(&status, "storage_problem")
            .as_string()
            .unwrap_or_default();
        assert!(problem.contains(says), "{kind}: {problem}");
        assert!(
            problem.contains("a new sign-in will replace it"),
            "{problem}"
        );
        let error = rejection(session.get_access_token(None)).await;
        assert_eq!(
            get(&error, "name").as_string().as_deref(),
            Some("TesseraError")
        );
        assert_eq!(
            get(&error, "code").as_string().as_deref(),
            Some("not_logged_in")
        );
        session.close();
        assert_eq!(
            raw(&key).await.as_deref(),
            Some(value.as_str()),
            "{kind}: value changed"
        );
    }

    // The value tessera sealed still opens: nothing above touched the key.
    put_raw(&key, &sealed).await;
    let session = open(client, "{}").await;
    let status = call(session.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
    session.close();

    // The key is gone (IndexedDB "tessera-keys" deleted, as clearing site data does): the
    // session is treated as absent and kept; the next write seals under a new key.
    let deleted = js_sys::Function::new_no_args(
        r#"return new Promise((resolve, reject) => {
             const request = indexedDB.deleteDatabase("tessera-keys");
             request.onsuccess = () => resolve(true);
             request.onerror = () => reject(request.error);
             request.onblocked = () => reject(new Error("blocked by an open connection"));
           });"#,
    );
    let deleted: js_sys::Promise = deleted.call0(&JsValue::UNDEFINED).unwrap().unchecked_into();
    call(deleted).await;
    let session = open(client, "{}").await;
    let status = call(session.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::FALSE, "{status:?}");
    assert_eq!(
        get(&status, "storage_error").as_string().as_deref(),
        Some("key_missing")
    );
    session.close();
    assert_eq!(raw(&key).await.as_deref(), Some(sealed.as_str()), "kept");
    put_raw(&key, &plaintext_session(client)).await;
    open(client, "{}").await.close();
    let resealed = raw(&key).await.unwrap();
    assert!(resealed.starts_with(SEALED_PREFIX), "{resealed:.40}");
    assert!(
        !resealed.starts_with(&format!("{SEALED_PREFIX}{id}.")),
        "sealed under a new key"
    );
    let session = open(client, "{}").await;
    assert_eq!(
        get(&call(session.status()).await, "logged_in"),
        JsValue::TRUE
    );
    session.close();
}

/// `encryptAtRest: false` keeps writing plaintext (no migration), and still reads a
/// sealed value.
pub async fn encryption_can_be_turned_off() {
    let client = "plain-test";
    let key = format!("tessera.session.{client}");
    let plain = plaintext_session(client);
    put_raw(&key, &plain).await;
    let session = open(client, r#"{"encryptAtRest":false}"#).await;
    assert_eq!(
        get(&call(session.status()).await, "logged_in"),
        JsValue::TRUE
    );
    session.close();
    assert_eq!(
        raw(&key).await.as_deref(),
        Some(plain.as_str()),
        "left in plaintext"
    );

    open(client, "{}").await.close();
    assert!(raw(&key).await.unwrap().starts_with(SEALED_PREFIX));
    let session = open(client, r#"{"encryptAtRest":false}"#).await;
    let status = call(session.status()).await;
    assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
    session.close();
}

/// Installs `chrome.storage.local` on this page: an in-memory area whose
/// `setAccessLevel` records its argument and then fails (`fail`) or succeeds; every call
/// is logged in order in `area.calls`. Returns the area; `remove_fake_chrome_storage`
/// takes it away again.
fn fake_chrome_storage(fail: bool) -> JsValue {
    let make = js_sys::Function::new_with_args(
        "fail",
        r#"
        const items = new Map();
        const calls = [];
        const area = {
          items, calls,
          async get(key) { calls.push("get"); return items.has(key) ? { [key]: items.get(key) } : {}; },
          async set(object) { calls.push("set"); for (const [k, v] of Object.entries(object)) items.set(k, v); },
          async remove(key) { calls.push("remove"); items.delete(key); },
          async setAccessLevel(options) {
            calls.push(`setAccessLevel ${options?.accessLevel}`);
            if (fail) throw new Error("not supported for this storage area");
          },
        };
        globalThis.chrome ??= {};
        globalThis.chrome.storage = { local: area };
        return area;
        "#,
    );
    make.call1(&JsValue::UNDEFINED, &JsValue::from_bool(fail))
        .unwrap()
}

fn remove_fake_chrome_storage() {
    let chrome = get(&js_sys::global(), "chrome");
    Reflect::delete_property(chrome.unchecked_ref::<Object>(), &"storage".into()).unwrap();
}

fn calls(area: &JsValue) -> Vec<String> {
    js_sys::Array::from(&get(area, "calls"))
        .iter()
        .map(|c| c.as_string().unwrap())
        .collect()
}

fn item(area: &JsValue, key: &str) -> Option<String> {
    let items: js_sys::Map = get(area, "items").unchecked_into();
    items.get(&key.into()).as_string()
}

/// With chrome.storage (an extension), `Session.open` sets chrome.storage.local's access
/// level to TRUSTED_CONTEXTS before its first write (here: sealing a plaintext session),
/// with no warning; when `setAccessLevel` fails (an older Chrome) the session is still
/// stored and `status().storage_warning` says what failed.
pub async fn chrome_storage_is_restricted_before_the_first_write() {
    let client = "access-level-test";
    let key = format!("tessera.session.{client}");
    for fail in [false, true] {
        let area = fake_chrome_storage(fail);
        let items: js_sys::Map = get(&area, "items").unchecked_into();
        items.set(&key.as_str().into(), &plaintext_session(client).into());
        let session = open(client, "{}").await;
        let status = call(session.status()).await;
        session.close();
        remove_fake_chrome_storage();

        assert_eq!(get(&status, "logged_in"), JsValue::TRUE, "{status:?}");
        let calls = calls(&area);
        let restricted = calls
            .iter()
            .position(|c| c == "setAccessLevel TRUSTED_CONTEXTS");
        let written = calls.iter().position(|c| c == "set");
        assert!(
            restricted.is_some() && restricted < written,
            "setAccessLevel must come before the first write: {calls:?}"
        );
        let stored = item(&area, &key).unwrap();
        assert!(stored.starts_with(SEALED_PREFIX), "stored: {stored:.40}");
        let warning = get(&status, "storage_warning").as_string();
        if fail {
            let warning = warning.expect("a storage warning");
            assert!(warning.contains("setAccessLevel"), "{warning}");
            assert!(
                warning.contains("not supported for this storage area"),
                "{warning}"
            );
        } else {
            assert_eq!(warning, None);
        }
    }
}
