//! Bindings to `glue.js` (the platform adapters) and to the embedder's storage object.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/browser/glue.js")]
extern "C" {
    /// chrome.storage.local, else IndexedDB; throws when neither exists.
    #[wasm_bindgen(js_name = defaultStorage, catch)]
    pub(crate) fn default_storage_js() -> Result<SessionStorage, JsValue>;

    /// Resolves with a warning when the default chrome.storage adapter could not be closed
    /// to content scripts, else with `undefined` (also for any other storage).
    #[wasm_bindgen(js_name = restrictStorage)]
    pub fn restrict_storage(storage: &SessionStorage) -> Promise;

    /// AES-GCM under a non-extractable key in IndexedDB; `None` without WebCrypto or
    /// IndexedDB.
    #[wasm_bindgen(js_name = sessionCipher)]
    pub fn session_cipher() -> Option<Cipher>;

    /// `seal(plain, label)` and `open(sealed, label)`, both promises (`label`: the
    /// storage key, bound as additional data); `open` rejects with `kind` "key_missing"
    /// or "undecryptable".
    #[derive(Clone, Debug)]
    pub type Cipher;

    #[wasm_bindgen(method)]
    pub fn seal(this: &Cipher, plain: &str, label: &str) -> Promise;

    #[wasm_bindgen(method)]
    pub fn open(this: &Cipher, sealed: &str, label: &str) -> Promise;

    /// `console.warn("tessera: " + message)`.
    pub fn warn(message: &str);

    /// chrome.identity.launchWebAuthFlow, or `undefined` outside an extension.
    #[wasm_bindgen(js_name = defaultLauncher)]
    pub fn default_launcher() -> Option<Function>;

    /// chrome.identity.getRedirectURL(), or `undefined`.
    #[wasm_bindgen(js_name = defaultRedirectUri)]
    pub fn default_redirect_uri() -> Option<String>;

    /// Resolves with the function that releases the Web Lock `name`.
    #[wasm_bindgen(js_name = acquireLock)]
    pub fn acquire_lock(name: &str, timeout_ms: f64) -> Promise;

    /// An `AbortSignal` that fires after `ms` milliseconds.
    #[wasm_bindgen(js_name = timeoutSignal)]
    pub fn timeout_signal(ms: f64) -> web_sys::AbortSignal;

    /// `setTimeout(callback, ms)` (capped at 2^31 - 1 ms); the id for `disarm_timer`.
    #[wasm_bindgen(js_name = armTimer)]
    pub fn arm_timer(ms: f64, callback: &Closure<dyn FnMut()>) -> JsValue;

    #[wasm_bindgen(js_name = disarmTimer)]
    pub fn disarm_timer(id: &JsValue);

    /// Calls `listener(event)`, reporting (not propagating) an exception.
    pub fn notify(listener: &Function, event: &JsValue);

    /// Resolves with whether the JWK `key_json` signed `message` with the JWS algorithm
    /// `alg`, giving `signature` (base64url): WebCrypto's arithmetic. Never rejects.
    #[wasm_bindgen(js_name = verifySignature)]
    fn verify_signature(alg: &str, key_json: &str, message: &str, signature: &str) -> Promise;

    /// `new Error(message)` with `name = "TesseraError"` and `code`.
    #[wasm_bindgen(js_name = tesseraError)]
    pub fn tessera_error(code: &str, message: &str) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    /// Where the session is kept: `get`, `set` and `remove`, each returning a promise
    /// (a plain value is accepted too).
    #[wasm_bindgen(typescript_type = "SessionStorage")]
    #[derive(Clone, Debug)]
    pub type SessionStorage;

    #[wasm_bindgen(method, catch)]
    pub fn get(this: &SessionStorage, key: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn set(this: &SessionStorage, key: &str, value: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub fn remove(this: &SessionStorage, key: &str) -> Result<JsValue, JsValue>;
}

/// The engine's signature check done by WebCrypto (`glue.js`): the browser package's
/// answer to `Action::VerifySignature`. Anything but a plain `true` is "not valid".
pub async fn verify_with_webcrypto(check: &tessera_engine::SignatureCheck) -> bool {
    let Ok(key) = serde_json::to_string(&check.key) else {
        return false;
    };
    let promise = verify_signature(
        check.algorithm.name(),
        &key,
        &check.signing_input,
        &check.signature,
    );
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .is_ok_and(|valid| valid.as_bool() == Some(true))
}

/// Awaits a value that may be a promise, turning a rejection or a throw into a message.
pub async fn settle(value: Result<JsValue, JsValue>) -> Result<JsValue, String> {
    let value = value.map_err(|e| describe(&e))?;
    wasm_bindgen_futures::JsFuture::from(Promise::resolve(&value))
        .await
        .map_err(|e| describe(&e))
}

/// A thrown JS value in one line: an `Error`'s message, else its string form.
pub fn describe(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// The storage `Session.open` uses when given none: `chrome.storage.local` in an
/// extension, else IndexedDB (database `tessera`), as raw strings: the session's
/// encryption at rest (`encryptAtRest`) sits between the session and this adapter.
/// Exported so that embedders can wrap it and pass the wrapper as `options.storage`.
#[wasm_bindgen(js_name = defaultStorage)]
pub fn default_storage() -> Result<SessionStorage, JsValue> {
    default_storage_js()
}
