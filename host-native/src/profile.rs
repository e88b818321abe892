//! Profiles: named OAuth configurations in `<config dir>/config.toml`, built on presets.
//!
//! A profile is a preset (data in `presets/*.toml`) overlaid with the user's settings and
//! then with command-line flags. `tessera login` saves what the flags said, so later
//! `tessera token` calls need no flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tessera_engine::{
    ClientAuthMethod, Config, DerivedEndpoint, Endpoints, LoginMethod, Secret, TokenRequestFormat,
};

use crate::store::StoreChoice;

/// The built-in presets, one TOML file each. A preset is a partial profile: the user's
/// profile and command-line flags fill in or override any field. `tests/presets.rs` checks
/// each against a transcript in `specs/presets/`. One file per preset: every command
/// resolves a profile, and parsing only the one it names keeps `tessera token` quick.
const PRESETS: &[(&str, &str)] = &[
    ("generic", include_str!("presets/generic.toml")),
    ("anthropic", include_str!("presets/anthropic.toml")),
    (
        "anthropic-loopback",
        include_str!("presets/anthropic-loopback.toml"),
    ),
    ("github", include_str!("presets/github.toml")),
    ("google", include_str!("presets/google.toml")),
    ("microsoft", include_str!("presets/microsoft.toml")),
];

/// One profile as written in `config.toml` (and in `presets/*.toml`). Every field is
/// optional so that layers can be merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The `iss` of ID tokens when it is not `issuer`; `{tenantid}` is the token's `tid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`; unset: from the metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth_method: Option<ClientAuthMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "is_empty_endpoints")]
    pub endpoints: Endpoints,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_request: Option<TokenRequestFormat>,
    /// The login method used when `login` is given none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginMethod>,
    /// Fixed loopback port (0 or absent: ephemeral).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_buffer_secs: Option<u64>,
    /// Slack for an ID token's `exp`/`iat`/`nbf`, judged by the provider's clock (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_secs: Option<u64>,
    /// An environment variable holding an API key: `tessera token` prints it when there
    /// is no session (the last link of the credential chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// `tessera serve`: tokens given once in the environment, as `<PREFIX>_ACCESS_TOKEN`,
    /// `<PREFIX>_REFRESH_TOKEN`, `<PREFIX>_EXPIRES_AT`, used when `<PREFIX>_USE_OAUTH` is
    /// `1` or `true`. Default `TESSERA`; the anthropic presets say `CLAUDE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env_prefix: Option<String>,
    /// `tessera git-credential`: the hosts (as git names them, `host` or `host:port`) this
    /// profile's token is handed to over https. None: git never gets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_hosts: Option<Vec<String>>,
    /// The username `tessera git-credential` gives git with the token (default `oauth2`,
    /// which GitLab requires for OAuth tokens and GitHub accepts; some hosts want
    /// `x-access-token` or `x-token-auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_username: Option<String>,
    /// How long a request to the provider may take, in seconds (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_timeout_secs: Option<u64>,
    /// Lifetime assumed when the provider sends no `expires_in` (e.g. GitHub's
    /// non-expiring tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed_token_lifetime_secs: Option<u64>,
    /// Accept plain http to hosts other than loopback (`login --insecure-http`; lab only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_http: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uri: Option<String>,
    /// Derived tokens by name (`tessera token --derived NAME`):
    /// `[profiles.P.derived.ws] url = "https://…"`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub derived: BTreeMap<String, DerivedEndpoint>,
}

fn is_empty_endpoints(endpoints: &Endpoints) -> bool {
    *endpoints == Endpoints::default()
}

/// `store = "keyring" | "file"` in a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreName {
    Keyring,
    File,
}

impl From<StoreName> for StoreChoice {
    fn from(name: StoreName) -> Self {
        match name {
            StoreName::Keyring => StoreChoice::Keyring,
            StoreName::File => StoreChoice::File,
        }
    }
}

impl ProfileSpec {
    /// `self` with every field `over` sets replaced.
    pub fn overlay(&self, over: &ProfileSpec) -> ProfileSpec {
        let mut params = self.authorization_params.clone();
        params.extend(over.authorization_params.clone());
        let mut derived = self.derived.clone();
        derived.extend(over.derived.clone());
        macro_rules! pick {
            ($field:ident) => {
                over.$field.clone().or_else(|| self.$field.clone())
            };
        }
        ProfileSpec {
            preset: pick!(preset),
            issuer: pick!(issuer),
            id_token_issuer: pick!(id_token_issuer),
            client_id: pick!(client_id),
            client_secret: pick!(client_secret),
            client_auth_method: pick!(client_auth_method),
            scopes: pick!(scopes),
            redirect_uri: pick!(redirect_uri),
            endpoints: over.endpoints.or(&self.endpoints),
            discovery: pick!(discovery),
            authorization_params: params,
            token_request: pick!(token_request),
            login: pick!(login),
            port: pick!(port),
            callback_path: pick!(callback_path),
            store: pick!(store),
            refresh_buffer_secs: pick!(refresh_buffer_secs),
            clock_skew_secs: pick!(clock_skew_secs),
            assumed_token_lifetime_secs: pick!(assumed_token_lifetime_secs),
            api_key_env: pick!(api_key_env),
            token_env_prefix: pick!(token_env_prefix),
            git_hosts: pick!(git_hosts),
            git_username: pick!(git_username),
            http_timeout_secs: pick!(http_timeout_secs),
            post_logout_redirect_uri: pick!(post_logout_redirect_uri),
            insecure_http: pick!(insecure_http),
            derived,
        }
    }

    /// The preset this profile names (`generic` when none), overlaid with the profile.
    pub fn resolved(&self) -> Result<ProfileSpec, ProfileError> {
        let name = self.preset.as_deref().unwrap_or("generic");
        Ok(preset(name)?.overlay(self))
    }

    /// The prefix of the token variables (`exec`, `export --format env`, `tessera serve`):
    /// `token_env_prefix`, else `TESSERA`.
    pub fn env_prefix(&self) -> &str {
        self.token_env_prefix
            .as_deref()
            .unwrap_or(crate::credentials::DEFAULT_ENV_PREFIX)
    }

    /// The engine configuration this (resolved) profile describes.
    pub fn engine_config(&self) -> Result<Config, ProfileError> {
        let client_id = self
            .client_id
            .clone()
            .ok_or(ProfileError::MissingClientId)?;
        let mut config = Config {
            issuer: self.issuer.clone(),
            id_token_issuer: self.id_token_issuer.clone(),
            client_id,
            client_secret: self.client_secret.clone().map(Secret::new),
            client_auth_method: self.client_auth_method,
            scopes: self.scopes.clone().unwrap_or_default(),
            redirect_uri: self.redirect_uri.clone(),
            endpoints: self.endpoints.clone(),
            authorization_params: self.authorization_params.clone(),
            token_request: self.token_request.unwrap_or_default(),
            post_logout_redirect_uri: self.post_logout_redirect_uri.clone(),
            derived: self.derived.clone(),
            ..Config::default()
        };
        if let Some(discovery) = self.discovery {
            config.discovery = discovery;
        }
        if let Some(buffer) = self.refresh_buffer_secs {
            config.refresh_buffer_secs = buffer;
        }
        if let Some(skew) = self.clock_skew_secs {
            config.clock_skew_secs = skew;
        }
        if let Some(secs) = self.http_timeout_secs {
            config.http_timeout_ms = secs.saturating_mul(1000).max(1);
        }
        if let Some(lifetime) = self.assumed_token_lifetime_secs {
            config.assumed_token_lifetime_secs = lifetime;
        }
        config.insecure_http = self.insecure_http.unwrap_or(false);
        Ok(config)
    }
}

/// A built-in preset by name.
pub fn preset(name: &str) -> Result<ProfileSpec, ProfileError> {
    let Some((_, text)) = PRESETS.iter().find(|(known, _)| *known == name) else {
        return Err(ProfileError::UnknownPreset {
            name: name.to_owned(),
            known: preset_names(),
        });
    };
    toml::from_str(text).map_err(|e| ProfileError::Invalid {
        path: format!("presets/{name}.toml").into(),
        detail: e.to_string(),
    })
}

/// The names of the built-in presets.
pub fn preset_names() -> Vec<String> {
    PRESETS.iter().map(|(name, _)| (*name).to_owned()).collect()
}

/// `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, ProfileSpec>,
}

impl ConfigFile {
    pub fn path(config_dir: &Path) -> PathBuf {
        config_dir.join("config.toml")
    }

    /// Reads `config.toml`; a missing file is an empty configuration.
    pub fn load(config_dir: &Path) -> Result<ConfigFile, ProfileError> {
        let path = Self::path(config_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ProfileError::Invalid {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(ProfileError::Io {
                path,
                detail: e.to_string(),
            }),
        }
    }

    /// Writes `config.toml` as the session files are written: the directory created 0700,
    /// the file 0600 through a temporary file that is synced and renamed (never following
    /// a link planted in its place).
    pub fn save(&self, config_dir: &Path) -> Result<(), ProfileError> {
        let path = Self::path(config_dir);
        let text = toml::to_string_pretty(self).map_err(|e| ProfileError::Invalid {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        crate::store::fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| ProfileError::Io {
            path: path.clone(),
            detail: e.to_string(),
        })
    }
}

/// What can be wrong with a profile.
#[derive(Debug)]
pub enum ProfileError {
    MissingClientId,
    UnknownPreset { name: String, known: Vec<String> },
    UnknownProfile { name: String },
    Invalid { path: PathBuf, detail: String },
    Io { path: PathBuf, detail: String },
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileError::MissingClientId => {
                f.write_str("no client id: pass --client-id (or --preset) to `tessera login`, or set client_id in the profile")
            }
            ProfileError::UnknownPreset { name, known } => {
                write!(f, "unknown preset `{name}`; known presets: {}", known.join(", "))
            }
            ProfileError::UnknownProfile { name } => {
                write!(f, "no profile `{name}`: run `tessera --profile {name} login --issuer … --client-id …` first")
            }
            ProfileError::Invalid { path, detail } => write!(f, "{} is not valid: {detail}", path.display()),
            ProfileError::Io { path, detail } => write!(f, "cannot access {}: {detail}", path.display()),
        }
    }
}

impl std::error::Error for ProfileError {}

#[cfg(test)]
mod tests {

    #[cfg(unix)]
    #[test]
    fn config_is_written_private_and_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tessera");
        let elsewhere = tmp.path().join("elsewhere.toml");
        std::fs::write(&elsewhere, "untouched").unwrap();
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, ConfigFile::path(&dir)).unwrap();
        ConfigFile::default().save(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ConfigFile::path(&dir)), 0o600);
        assert!(
            !std::fs::symlink_metadata(ConfigFile::path(&dir))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "untouched");
        let fresh = tmp.path().join("fresh");
        ConfigFile::default().save(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }

    use super::*;

    #[test]
    fn every_preset_parses_and_flags_override_it() {
        for name in preset_names() {
            preset(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let spec = ProfileSpec {
            preset: Some("anthropic".into()),
            scopes: Some(vec!["x".into()]),
            ..Default::default()
        };
        let config = spec.resolved().unwrap().engine_config().unwrap();
        assert_eq!(config.client_id, "9d1c250a-e61b-44d9-88ed-5944d1962f5e");
        assert_eq!(config.scopes, vec!["x"]);
        assert_eq!(config.token_request, TokenRequestFormat::Json);
        assert_eq!(
            config.authorization_params.get("code").map(String::as_str),
            Some("true")
        );
    }

    #[test]
    fn signing_keys_and_clock_skew_are_read_and_handed_to_the_engine() {
        let file: ConfigFile = toml::from_str(
            "[profiles.x]\nclient_id = \"c\"\nclock_skew_secs = 5\n\
             [profiles.x.endpoints]\njwks = \"https://op.example/keys\"\n\
             [[profiles.x.endpoints.signing_keys]]\nkty = \"OKP\"\ncrv = \"Ed25519\"\n\
             kid = \"k1\"\nx = \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"\n",
        )
        .unwrap();
        let config = file.profiles["x"].engine_config().unwrap();
        assert_eq!(config.clock_skew_secs, 5);
        assert_eq!(
            config.endpoints.jwks.as_deref(),
            Some("https://op.example/keys")
        );
        assert_eq!(config.endpoints.signing_keys[0].kid.as_deref(), Some("k1"));
    }

    #[test]
    fn derived_endpoints_are_read_merged_and_handed_to_the_engine() {
        let file: ConfigFile = toml::from_str(
            "[profiles.x]\nclient_id = \"c\"\n[profiles.x.derived.ws]\nurl = \"https://api.example/ws\"\n",
        )
        .unwrap();
        let stored = &file.profiles["x"];
        let over = ProfileSpec {
            derived: BTreeMap::from([(
                "rtc".to_owned(),
                DerivedEndpoint {
                    url: "https://api.example/rtc".into(),
                },
            )]),
            ..Default::default()
        };
        let config = stored.overlay(&over).engine_config().unwrap();
        assert_eq!(config.derived["ws"].url, "https://api.example/ws");
        assert_eq!(config.derived["rtc"].url, "https://api.example/rtc");
        let typo = toml::from_str::<ConfigFile>(
            "[profiles.x.derived.ws]\nuri = \"https://api.example/ws\"\n",
        );
        assert!(typo.is_err(), "an unknown key is an error, not ignored");
    }

    #[test]
    fn a_profile_without_client_id_says_what_to_do() {
        let error = ProfileSpec::default().engine_config().unwrap_err();
        assert!(error.to_string().contains("--client-id"));
    }
}
