//! Presets are data, and each is pinned by transcripts: every file under
//! `specs/presets/<name>/` must be configured exactly as the preset resolves (the client
//! id, secret and, for `generic`, issuer the preset leaves to the user are taken from the
//! transcript), and every
//! preset has at least a login and a refresh transcript.

use std::path::Path;

use tessera::engine::transcript::Transcript;
use tessera::profile::{ProfileSpec, preset_names};

#[test]
fn each_preset_has_login_and_refresh_transcripts_with_its_configuration() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/presets");
    for name in preset_names() {
        let preset_dir = dir.join(&name);
        let mut files: Vec<_> = std::fs::read_dir(&preset_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", preset_dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let named = |kind: &str| {
            files.iter().any(|p| {
                p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.contains(kind))
            })
        };
        assert!(
            named("login") && named("refresh"),
            "preset `{name}` needs a login and a refresh transcript in {}",
            preset_dir.display()
        );
        for path in &files {
            let text = std::fs::read_to_string(path).expect("readable");
            let transcript: Transcript =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let spec = ProfileSpec {
                preset: Some(name.clone()),
                issuer: transcript.config.issuer.clone(),
                client_id: Some(transcript.config.client_id.clone()),
                client_secret: transcript
                    .config
                    .client_secret
                    .as_ref()
                    .map(|s| s.expose().to_owned()),
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
        }
    }
}
