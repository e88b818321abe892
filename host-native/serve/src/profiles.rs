//! The profiles a service serves: those of `<config dir>/config.toml`, then the built-in
//! presets, as in the CLI. Each one's environment (API key, tokens given once) is read
//! when the service starts.

use std::collections::BTreeMap;
use std::path::Path;

use tessera::profile::{ConfigFile, ProfileSpec, preset, preset_names};
use tessera_engine::{Config, Secret};

use crate::error::StartError;

/// Tokens given once in the environment (`<PREFIX>_ACCESS_TOKEN`… with
/// `<PREFIX>_USE_OAUTH=1`). `Debug` withholds them.
#[derive(Clone)]
pub struct EnvTokens {
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    /// Milliseconds (a value in seconds is converted).
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for EnvTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvTokens")
            .field("access_token", &self.access_token.is_some())
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One profile, ready to serve.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    /// `None` when the profile cannot run OAuth (e.g. a preset without a client id); its
    /// routes then answer `profile_misconfigured`, and the API key still serves.
    pub config: Result<Config, String>,
    pub api_key_env: Option<String>,
    pub api_key: Option<Secret>,
    pub env_prefix: String,
    pub env_tokens: Option<EnvTokens>,
    /// A short name for the provider (`oauthProvider` in `/settings`).
    pub provider: String,
}

impl Profile {
    /// The environment variables `?format=env` exports.
    pub fn env_names(&self) -> [String; 4] {
        let p = &self.env_prefix;
        [
            format!("{p}_ACCESS_TOKEN"),
            format!("{p}_REFRESH_TOKEN"),
            format!("{p}_EXPIRES_AT"),
            format!("{p}_USE_OAUTH"),
        ]
    }
}

/// Every profile by name.
#[derive(Debug, Default)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The config file's profiles and the presets, with `buffer_secs` as each one's refresh
    /// buffer unless it sets its own; `env` reads the environment.
    pub fn load(
        config_dir: &Path,
        buffer_secs: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, StartError> {
        let file = ConfigFile::load(config_dir).map_err(|e| StartError::Profile {
            profile: "config.toml".into(),
            detail: e.to_string(),
        })?;
        let mut specs: BTreeMap<String, ProfileSpec> = preset_names()
            .into_iter()
            .filter_map(|name| preset(&name).ok().map(|spec| (name, spec)))
            .collect();
        for (name, spec) in &file.profiles {
            let resolved = spec.resolved().map_err(|e| StartError::Profile {
                profile: name.clone(),
                detail: e.to_string(),
            })?;
            specs.insert(name.clone(), resolved);
        }
        let by_name = specs
            .into_iter()
            .map(|(name, spec)| {
                let profile = Profile::from_spec(&name, &spec, buffer_secs, env);
                (name, profile)
            })
            .collect();
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }
}

impl Profile {
    fn from_spec(
        name: &str,
        spec: &ProfileSpec,
        buffer_secs: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let config = spec
            .engine_config()
            .map(|mut config| {
                if spec.refresh_buffer_secs.is_none() {
                    config.refresh_buffer_secs = buffer_secs;
                }
                // A sign-in started over HTTP waits ten minutes for its callback.
                config.callback_timeout_secs = 600;
                config
            })
            .map_err(|e| e.to_string());
        let env_prefix = spec
            .token_env_prefix
            .clone()
            .unwrap_or_else(|| "TESSERA".to_owned());
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let use_oauth = set(&format!("{env_prefix}_USE_OAUTH")).is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        });
        let env_tokens = use_oauth
            .then(|| EnvTokens {
                access_token: set(&format!("{env_prefix}_ACCESS_TOKEN")).map(Secret::new),
                refresh_token: set(&format!("{env_prefix}_REFRESH_TOKEN")).map(Secret::new),
                expires_at: set(&format!("{env_prefix}_EXPIRES_AT"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(tessera::credentials::to_millis),
            })
            .filter(|t| t.access_token.is_some() || t.refresh_token.is_some());
        let api_key = spec.api_key_env.as_deref().and_then(set).map(Secret::new);
        let provider = spec
            .preset
            .clone()
            .or_else(|| {
                spec.issuer
                    .as_deref()
                    .and_then(|i| url::Url::parse(i).ok())
                    .and_then(|u| u.host_str().map(str::to_owned))
            })
            .unwrap_or_else(|| name.to_owned());
        Profile {
            name: name.to_owned(),
            config,
            api_key_env: spec.api_key_env.clone(),
            api_key,
            env_prefix,
            env_tokens,
            provider,
        }
    }
}
