//! The whole `specs/` corpus replayed by the wasm build under node
//! (`cargo test -p tessera-wasm --target wasm32-unknown-unknown`), and by the native
//! build under `cargo test`: every transcript's expectations hold, and its effects are
//! byte for byte those of the native replay done by `build.rs`.

mod common;
#[cfg(target_family = "wasm")]
mod webcrypto_common;

use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test(unsupported = test)]
fn corpus_replays_with_the_native_effects() {
    #[cfg(target_family = "wasm")]
    assert!(
        !common::global_string(&["process", "versions", "node"]).is_empty(),
        "not node"
    );
    #[cfg(target_family = "wasm")]
    let replay = common::replay_as_js;
    #[cfg(not(target_family = "wasm"))]
    let replay =
        |name: &str, text: &str| tessera_wasm::replay(name, text).map_err(|f| f.to_string());
    let summary = common::replay_corpus(replay);
    #[cfg(target_family = "wasm")]
    wasm_bindgen_test::console_log!("node: {summary}");
    #[cfg(not(target_family = "wasm"))]
    println!("native: {summary}");
}

/// The npm package's signature checks (WebCrypto in `glue.js`) under node.
#[cfg(target_family = "wasm")]
#[wasm_bindgen_test]
async fn webcrypto_checks_the_fixture_signatures_in_node() {
    assert!(
        !common::global_string(&["process", "versions", "node"]).is_empty(),
        "not node"
    );
    let summary = webcrypto_common::fixtures_verify_with_webcrypto().await;
    wasm_bindgen_test::console_log!("node: {summary}");
}

/// Natively there is a file system: the embedded corpus is exactly the `.toml` files
/// under `specs/`, with their current text (so the wasm suites, which replay the same
/// embedding, miss none).
#[cfg(not(target_family = "wasm"))]
#[test]
fn the_embedding_holds_every_transcript() {
    fn walk(dir: &std::path::Path, root: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("specs/ is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let relative = path.strip_prefix(root).expect("under specs/");
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut on_disk = Vec::new();
    walk(&root, &root, &mut on_disk);
    on_disk.sort();
    // build.rs orders by path components, this by text: compare as sets.
    let mut embedded: Vec<&str> = common::CORPUS.iter().map(|t| t.name).collect();
    embedded.sort();
    assert_eq!(embedded, on_disk);
    for t in common::CORPUS {
        let text = std::fs::read_to_string(root.join(t.name)).expect("readable");
        assert_eq!(t.text, text, "{} is embedded stale", t.name);
    }
}
