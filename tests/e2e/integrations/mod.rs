//! The commands that hand the token to other tools (issue 16), as processes against the
//! real provider: `import`/`export` round trips, `exec`, git's and kubectl's helpers, and
//! the generated completions and man page, derived tokens.

mod derived;
mod docs;
mod exec;
mod files;
mod git;
mod kube;

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// Sets `key = value` (TOML) in the default profile of `config.toml`.
pub(crate) fn set_profile_key(dir: &Path, key: &str, value: toml::Value) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut config: toml::Table = toml::from_str(&text).expect("config.toml parses");
    let profiles = config
        .entry("profiles")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    let profile = profiles
        .as_table_mut()
        .expect("profiles table")
        .entry("default")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    profile
        .as_table_mut()
        .expect("profile table")
        .insert(key.to_owned(), value);
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write config.toml");
}

/// A command for another program (git, kubectl) with the environment `tessera` gets in
/// these tests, so the helper it starts finds the same profile and passphrase.
pub(crate) fn with_tessera_env(tessera: &Tessera, program: &str) -> Command {
    let template = tessera.command(&[]);
    let mut command = Command::new(program);
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.env("HOME", tessera.dir.path());
    command
}

/// `tessera token`'s answer now (the stored token, refreshed if needed).
pub(crate) fn current_token(tessera: &Tessera) -> String {
    let token = tessera.run(&["token"]);
    assert_ok(&token, "token");
    stdout(&token)
}
