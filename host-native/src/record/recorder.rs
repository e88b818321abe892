//! Collecting a live session's engine inputs and writing them as a blessed transcript.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tessera_engine::transcript::{Step, Transcript, run_text};
use tessera_engine::{Config, Input, Secret, UnixMillis};

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

    /// Writes the transcript (cleaned and blessed) and returns its path.
    pub fn finish(&self, description: &str) -> Result<PathBuf, String> {
        let recording = self.lock();
        let Some(config) = recording.config.clone() else {
            return Err("nothing was recorded".into());
        };
        let mut clean = Cleaner::default();
        let mut config = config;
        if let Some(secret) = &config.client_secret {
            config.client_secret = Some(Secret::new(
                clean.placeholder(secret.expose(), "client-secret"),
            ));
        }
        let steps = recording
            .inputs
            .iter()
            .map(|(at, input)| Step {
                at: recording.start.millis_until(*at),
                note: None,
                input: clean.input(input),
                rejected: None,
                state: String::new(),
                wake: None,
                expect: Vec::new(),
            })
            .collect();
        let transcript: Transcript = Transcript {
            description: description.to_owned(),
            seed: recording.seed.iter().map(|b| format!("{b:02x}")).collect(),
            start: recording.start.0,
            level: Default::default(),
            config,
            driver: None,
            on_start: Vec::new(),
            steps,
        };
        let draft = toml::to_string(&transcript)
            .map_err(|e| format!("cannot encode the transcript: {e}"))?;
        let name = recording.path.display().to_string();
        let (_, blessed) = run_text(&name, &draft, true).map_err(|f| f.to_string())?;
        write(&recording.path, blessed.as_deref().unwrap_or(&draft))?;
        Ok(recording.path.clone())
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
