//! The whole `specs/` corpus replayed by the wasm build in headless Chromium, on a page
//! (`make wasm-test`; needs `CHROMEDRIVER`). Same checks as `corpus_node.rs`. Also the
//! `Session` class on its default storage there (IndexedDB, `session_common`), encrypted
//! at rest.
#![cfg(target_family = "wasm")]

mod common;
mod session_common;
mod webcrypto_common;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn corpus_replays_with_the_native_effects_in_chromium() {
    // Refuse to pass anywhere but on a page in Chromium.
    let agent = common::global_string(&["navigator", "userAgent"]);
    assert!(agent.contains("Chrome"), "not Chromium: {agent:?}");
    assert_eq!(common::global_string(&["constructor", "name"]), "Window");
    let summary = common::replay_corpus(common::replay_as_js);
    wasm_bindgen_test::console_log!("Chromium page: {summary} [{agent}]");
}

/// The npm package's signature checks (WebCrypto in `glue.js`) on a page in Chromium.
#[wasm_bindgen_test]
async fn webcrypto_checks_the_fixture_signatures_in_chromium() {
    let agent = common::global_string(&["navigator", "userAgent"]);
    assert!(agent.contains("Chrome"), "not Chromium: {agent:?}");
    let summary = webcrypto_common::fixtures_verify_with_webcrypto().await;
    wasm_bindgen_test::console_log!("Chromium page: {summary}");
}

#[wasm_bindgen_test]
async fn session_uses_indexeddb_in_a_page() {
    session_common::default_storage_is_indexeddb_and_keeps_the_session().await;
}

#[wasm_bindgen_test]
async fn plaintext_session_is_migrated_and_read_back_encrypted_in_a_page() {
    session_common::plaintext_session_is_migrated_and_read_back_encrypted().await;
}

#[wasm_bindgen_test]
async fn undecryptable_session_is_a_typed_error_in_a_page() {
    session_common::undecryptable_session_is_a_typed_error_and_left_as_it_was().await;
}

#[wasm_bindgen_test]
async fn encryption_at_rest_can_be_turned_off_in_a_page() {
    session_common::encryption_can_be_turned_off().await;
}

#[wasm_bindgen_test]
async fn chrome_storage_is_restricted_before_the_first_write_in_a_page() {
    session_common::chrome_storage_is_restricted_before_the_first_write().await;
}
