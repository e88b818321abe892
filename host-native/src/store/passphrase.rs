//! Getting the passphrase of the encrypted session file: from `TESSERA_PASSPHRASE`, from a
//! prompt on the terminal, or from the embedding program.
//!
//! The passphrase is asked for lazily — only when a file must be opened or written — so
//! `tessera status` with no session, or `tessera logout` (which deletes the file), never
//! prompts. It is never logged; the copy kept for later writes is overwritten when dropped.

use std::io::{self, IsTerminal as _};
use std::path::Path;

use super::PassphraseSource;
use super::error::StoreError;

/// The environment variable consulted by [`PassphraseSource::Env`] and `EnvOrPrompt`.
pub const PASSPHRASE_ENV: &str = "TESSERA_PASSPHRASE";

/// How many times a mistyped passphrase may be retried at the prompt.
pub(crate) const MAX_PROMPTS: u32 = 3;

/// A passphrase, overwritten in memory when dropped; `Debug` never shows it.
pub(crate) struct Passphrase(String);

impl Passphrase {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    #[cfg(test)]
    pub(crate) fn for_tests(value: &str) -> Self {
        Passphrase(value.to_owned())
    }
}

impl Drop for Passphrase {
    fn drop(&mut self) {
        super::envelope::wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Reads one line without echo after showing a prompt.
pub(crate) type PromptFn = dyn Fn(&str) -> io::Result<String> + Send + Sync;

/// Where passphrases come from, for one store.
pub(crate) struct Asker {
    source: PassphraseSource,
    env_var: &'static str,
    /// Replaces the terminal prompt (tests); `None` means rpassword on the TTY.
    prompt: Option<Box<PromptFn>>,
}

impl std::fmt::Debug for Asker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asker")
            .field("source", &self.source)
            .field("env_var", &self.env_var)
            .finish_non_exhaustive()
    }
}

impl Asker {
    pub(crate) fn new(source: PassphraseSource) -> Self {
        Asker {
            source,
            env_var: PASSPHRASE_ENV,
            prompt: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn scripted(
        source: PassphraseSource,
        env_var: &'static str,
        prompt: Option<Box<PromptFn>>,
    ) -> Self {
        Asker {
            source,
            env_var,
            prompt,
        }
    }

    /// The passphrase of an existing file.
    pub(crate) fn existing(&self, path: &Path) -> Result<Passphrase, StoreError> {
        if let Some(passphrase) = self.without_prompt(path)? {
            return Ok(passphrase);
        }
        let prompt = format!(
            "Passphrase for tessera's encrypted session file ({}): ",
            path.display()
        );
        self.ask(path, &prompt)
    }

    /// A passphrase for a new file: typed twice at a prompt, since a typo would lock the
    /// user out of the session they are about to create.
    pub(crate) fn new_file(&self, path: &Path) -> Result<Passphrase, StoreError> {
        if let Some(passphrase) = self.without_prompt(path)? {
            warn_if_short(&passphrase);
            return Ok(passphrase);
        }
        let prompt = format!(
            "New passphrase for tessera's encrypted session file ({}): ",
            path.display()
        );
        for _ in 0..MAX_PROMPTS {
            let first = self.ask(path, &prompt)?;
            let again = self.ask(path, "Repeat the passphrase: ")?;
            if first.0 == again.0 {
                warn_if_short(&first);
                return Ok(first);
            }
            self.tell("The passphrases differ; try again.");
        }
        Err(StoreError::NoPassphrase {
            path: path.to_owned(),
            reason: "the passphrases typed did not match".to_owned(),
        })
    }

    /// Whether a wrong passphrase can be retried by asking again.
    pub(crate) fn can_prompt(&self) -> bool {
        matches!(self.source, PassphraseSource::EnvOrPrompt)
            && self.env_value().is_none()
            && (self.prompt.is_some() || io::stderr().is_terminal())
    }

    /// Prints a line for the person at the prompt.
    pub(crate) fn tell(&self, line: &str) {
        if self.prompt.is_none() {
            eprintln!("{line}");
        }
    }

    /// The passphrase from the environment or the program, if that is where it comes
    /// from; `Ok(None)` when it must be asked for.
    fn without_prompt(&self, path: &Path) -> Result<Option<Passphrase>, StoreError> {
        let from = Passphrase;
        let missing = |reason: String| StoreError::NoPassphrase {
            path: path.to_owned(),
            reason,
        };
        match &self.source {
            PassphraseSource::Fixed(value) if value.is_empty() => {
                Err(missing("the passphrase given is empty".to_owned()))
            }
            PassphraseSource::Fixed(value) => Ok(Some(from(value.clone()))),
            PassphraseSource::Env => match self.env_value() {
                Some(value) => Ok(Some(from(value))),
                None => Err(missing(format!("{} is not set", self.env_var))),
            },
            PassphraseSource::EnvOrPrompt => match self.env_value() {
                Some(value) => Ok(Some(from(value))),
                None if self.prompt.is_some() || io::stderr().is_terminal() => Ok(None),
                None => Err(missing(format!(
                    "{} is not set and there is no terminal to ask on",
                    self.env_var
                ))),
            },
        }
    }

    /// The environment variable, unless unset, empty or not UTF-8.
    fn env_value(&self) -> Option<String> {
        std::env::var(self.env_var).ok().filter(|v| !v.is_empty())
    }

    fn ask(&self, path: &Path, prompt: &str) -> Result<Passphrase, StoreError> {
        let read = match &self.prompt {
            Some(prompt_fn) => prompt_fn(prompt),
            None => rpassword::prompt_password_with_config(
                prompt,
                rpassword::ConfigBuilder::new()
                    .output_writer(io::stderr())
                    .build(),
            ),
        };
        match read {
            Ok(value) if value.is_empty() => Err(StoreError::NoPassphrase {
                path: path.to_owned(),
                reason: "an empty passphrase was entered".to_owned(),
            }),
            Ok(value) => Ok(Passphrase(value)),
            Err(err) => Err(StoreError::NoPassphrase {
                path: path.to_owned(),
                reason: format!("the terminal could not be read ({err})"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const UNSET: &str = "TESSERA_TEST_VARIABLE_THAT_IS_NEVER_SET";

    fn script(answers: &[&str]) -> Option<Box<PromptFn>> {
        let answers = Mutex::new(answers.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        Some(Box::new(move |_prompt: &str| {
            let mut answers = answers.lock().unwrap();
            Ok(answers.remove(0))
        }))
    }

    #[test]
    fn fixed_passphrases_are_used_as_given() {
        let asker = Asker::scripted(PassphraseSource::Fixed("pw".into()), UNSET, None);
        let passphrase = asker.existing(Path::new("/f")).unwrap();
        assert_eq!(passphrase.as_bytes(), b"pw");
        assert!(!asker.can_prompt());
        let empty = Asker::scripted(PassphraseSource::Fixed(String::new()), UNSET, None);
        assert!(matches!(
            empty.new_file(Path::new("/f")),
            Err(StoreError::NoPassphrase { .. })
        ));
    }

    #[test]
    fn env_without_the_variable_is_no_passphrase() {
        let asker = Asker::scripted(PassphraseSource::Env, UNSET, script(&["typed"]));
        let err = asker.existing(Path::new("/f")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(UNSET) && text.contains("run in a terminal"),
            "{text}"
        );
    }

    #[test]
    fn prompts_when_the_variable_is_unset() {
        let asker = Asker::scripted(PassphraseSource::EnvOrPrompt, UNSET, script(&["typed"]));
        assert!(asker.can_prompt());
        let passphrase = asker.existing(Path::new("/f")).unwrap();
        assert_eq!(passphrase.as_bytes(), b"typed");
    }

    #[test]
    fn a_new_passphrase_must_be_typed_twice_alike() {
        let asker = Asker::scripted(
            PassphraseSource::EnvOrPrompt,
            UNSET,
            script(&["one", "typo", "two", "two"]),
        );
        assert_eq!(asker.new_file(Path::new("/f")).unwrap().as_bytes(), b"two");
        let asker = Asker::scripted(
            PassphraseSource::EnvOrPrompt,
            UNSET,
            script(&["a", "b", "c", "d", "e", "f"]),
        );
        assert!(matches!(
            asker.new_file(Path::new("/f")),
            Err(StoreError::NoPassphrase { .. })
        ));
    }

    #[test]
    fn debug_never_shows_a_passphrase() {
        let shown = format!("{:?}", Passphrase("hunter2".into()));
        assert!(!shown.contains("hunter2"));
        let shown = format!("{:?}", PassphraseSource::Fixed("hunter2".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

/// Passphrases shorter than this get a warning when a file is created with one: scrypt
/// makes each guess expensive, not a short passphrase hard to guess.
const SHORT_PASSPHRASE_CHARS: usize = 12;

fn warn_if_short(passphrase: &Passphrase) {
    if is_short(&passphrase.0) {
        tracing::warn!(
            "the session file's passphrase is shorter than {SHORT_PASSPHRASE_CHARS} characters: \
             a copy of the file could be opened by guessing it; use a longer one"
        );
    }
}

fn is_short(passphrase: &str) -> bool {
    passphrase.chars().count() < SHORT_PASSPHRASE_CHARS
}

#[cfg(test)]
mod short_tests {
    #[test]
    fn short_passphrases_are_told_apart() {
        assert!(super::is_short("hunter2"));
        assert!(!super::is_short("correct horse battery staple"));
    }
}
