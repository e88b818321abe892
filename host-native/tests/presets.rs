//! Presets are data, and each is pinned by a transcript: `specs/presets/<name>.toml` must
//! be configured exactly as the preset resolves (client ids the preset leaves to the user
//! are taken from the transcript).

use std::path::Path;

use tessera::engine::transcript::Transcript;
use tessera::profile::{ProfileSpec, preset_names};

#[test]
fn each_preset_transcript_uses_the_preset_configuration() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/presets");
    let mut checked = 0;
    for name in preset_names() {
        let path = dir.join(format!("{name}.toml"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let transcript: Transcript =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let spec = ProfileSpec {
            preset: Some(name.clone()),
            client_id: Some(transcript.config.client_id.clone()),
            ..ProfileSpec::default()
        };
        let config = spec
            .resolved()
            .and_then(|s| s.engine_config())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            config,
            transcript.config,
            "preset `{name}` and {} disagree",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected preset transcripts in {}",
        dir.display()
    );
}
