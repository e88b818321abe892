//! Collecting a live session's engine inputs and writing them as a blessed transcript.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tessera_engine::transcript::{EngineSubject, Replay, Step, Transcript, run_text};
use tessera_engine::{Config, Effect, Input, Secret, UnixMillis};

use super::clean::Cleaner;

/// Collects a session's inputs; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Mutex<Recording>>,
}

#[derive(Debug)]
struct Recording {
    path: PathBuf,
    config: Option<Config>,
    seed: [u8; 32],
    start: UnixMillis,
    inputs: Vec<(UnixMillis, Input)>,
}

impl Recorder {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let recording = Recording {
            path: path.into(),
            config: None,
            seed: [0; 32],
            start: UnixMillis(0),
            inputs: Vec::new(),
        };
        Self {
            inner: Arc::new(Mutex::new(recording)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn started(&self, config: &Config, seed: [u8; 32], start: UnixMillis) {
        let mut recording = self.lock();
        recording.config = Some(config.clone());
        recording.seed = seed;
        recording.start = start;
    }

    pub(crate) fn input(&self, at: UnixMillis, input: &Input) {
        self.lock().inputs.push((at, input.clone()));
    }

    /// Writes the transcript (cleaned, with a fresh seed, and blessed) and returns its
    /// path. The file is written atomically with mode 0600.
    pub fn finish(&self, description: &str) -> Result<PathBuf, String> {
        let recording = self.lock();
        let Some(config) = recording.config.clone() else {
            return Err("nothing was recorded".into());
        };
        // The live seed gave this login its PKCE verifier, state and nonce: the file gets
        // a fresh one, and the recorded state and nonce become what the engine derives
        // from it (so the replay passes and the live ones are not in the file).
        let seed = fresh_seed()?;
        let live = derived_values(&recording.transcript(&config, recording.seed, &HashMap::new()));
        let mut derived = HashMap::new();
        // One round per login in the recording: each round's callbacks pass, so the
        // engine goes on to the next login (a recording has one, rarely two).
        for _ in 0..4 {
            let now = derived_values(&recording.transcript(&config, seed, &derived));
            let next: HashMap<String, String> = live
                .iter()
                .zip(&now)
                .flat_map(|((old_state, old_nonce), (state, nonce))| {
                    let nonce = old_nonce.clone().zip(nonce.clone());
                    std::iter::once((old_state.clone(), state.clone())).chain(nonce)
                })
                .collect();
            if next == derived {
                break;
            }
            derived = next;
        }
        let transcript = recording.transcript(&config, seed, &derived);
        let transcript = Transcript {
            description: description.to_owned(),
            ..transcript
        };
        let draft = toml::to_string(&transcript)
            .map_err(|e| format!("cannot encode the transcript: {e}"))?;
        let name = recording.path.display().to_string();
        let (_, blessed) = run_text(&name, &draft, true).map_err(|f| f.to_string())?;
        crate::store::fsutil::write_atomic(
            &recording.path,
            blessed.as_deref().unwrap_or(&draft).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        Ok(recording.path.clone())
    }
}

impl Recording {
    /// The recorded inputs, cleaned (`derived`: live `state`/`nonce` → the ones `seed`
    /// gives), as an unblessed transcript with `seed`.
    fn transcript(
        &self,
        config: &Config,
        seed: [u8; 32],
        derived: &HashMap<String, String>,
    ) -> Transcript {
        let mut clean = Cleaner::with_derived(derived.clone());
        let mut config = config.clone();
        if let Some(secret) = &config.client_secret {
            config.client_secret = Some(Secret::new(
                clean.placeholder(secret.expose(), "client-secret"),
            ));
        }
        let steps = self
            .inputs
            .iter()
            .map(|(at, input)| Step {
                at: self.start.millis_until(*at),
                note: None,
                input: clean.input(input),
                rejected: None,
                state: String::new(),
                wake: None,
                expect: Vec::new(),
            })
            .collect();
        Transcript {
            description: String::new(),
            seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
            start: self.start.0,
            level: Default::default(),
            config,
            driver: None,
            on_start: Vec::new(),
            steps,
        }
    }
}

/// The `state` (and `nonce`, if any) of each authorization request the engine makes for
/// `transcript`, in order: from the URL it opens or shows, or a pushed request's body.
fn derived_values(transcript: &Transcript) -> Vec<(String, Option<String>)> {
    let replay = Replay::run::<EngineSubject>(transcript);
    let effects = replay
        .on_start
        .iter()
        .chain(replay.steps.iter().flat_map(|step| &step.effects));
    let mut found = Vec::new();
    for effect in effects {
        let pairs: Vec<(String, String)> = match effect {
            Effect::OpenBrowser { url } | Effect::PromptForCode { url } => url::Url::parse(url)
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default(),
            Effect::Http(request) => request
                .body
                .as_deref()
                .map(|b| {
                    url::form_urlencoded::parse(b.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if value("code_challenge").is_none() {
            continue;
        }
        if let Some(state) = value("state") {
            found.push((state, value("nonce")));
        }
    }
    found
}

fn fresh_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness for the seed: {e}"))?;
    Ok(seed)
}
