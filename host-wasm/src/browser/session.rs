//! The `Session` class: what JavaScript calls. Each method sends one command to the
//! session actor and returns a promise for its answer.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use tessera_engine::driver::{Command, Driver, DriverOptions};
use tessera_engine::{Config, LoginMethod, Secret};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use super::actor::{Adapters, Mailbox, SessionMsg, now};
use super::error::Failure;
use super::glue::{self, SessionStorage};
use super::promises::{Expect, Waiting};
use super::storage::{self, Store};

#[wasm_bindgen]
extern "C" {
    // The options objects of the methods below, declared in typescript.rs. Imported
    // types (not JsValue) so that the declarations mark them optional.
    #[wasm_bindgen(extends = Object, typescript_type = "SessionOptions")]
    #[derive(Clone, Debug)]
    pub type SessionOptions;
    #[wasm_bindgen(extends = Object, typescript_type = "LoginOptions")]
    #[derive(Clone, Debug)]
    pub type LoginOptions;
    #[wasm_bindgen(extends = Object, typescript_type = "TokenOptions")]
    #[derive(Clone, Debug)]
    pub type TokenOptions;
    #[wasm_bindgen(extends = Object, typescript_type = "LogoutOptions")]
    #[derive(Clone, Debug)]
    pub type LogoutOptions;
}

/// A signed-in (or not yet signed-in) user of one OAuth client, kept in storage.
///
/// Open one per client and keep it for the life of the page or worker: it serialises
/// refreshes (concurrent `getAccessToken` calls share one), re-arms the proactive
/// refresh, and writes every change to storage before answering.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Session {
    mailbox: Mailbox,
    listeners: Rc<RefCell<Vec<Function>>>,
}

#[wasm_bindgen]
impl Session {
    /// Starts a session for `config` (the engine's configuration: `client_id`, `issuer`,
    /// `scopes`, …) and loads what storage holds. Resolves once loaded; an unreadable
    /// stored session does not reject (see `status().storage_problem`).
    #[wasm_bindgen(unchecked_return_type = "Promise<Session>")]
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue,
        options: Option<SessionOptions>,
    ) -> Promise {
        future_to_promise(
            async move { Session::connect(&config, options).await.map(JsValue::from) },
        )
    }

    /// Signs in: `method` "browser" (default) opens the authorization page with the
    /// launcher, "device" shows a code (`user_code` event) and waits for approval.
    #[wasm_bindgen(unchecked_return_type = "Promise<LoginResult>")]
    pub fn login(&self, options: Option<LoginOptions>) -> Promise {
        let method = match option_string(options.as_deref(), "method") {
            Ok(None) => Ok(LoginMethod::Browser),
            Ok(Some(method)) if method == "browser" => Ok(LoginMethod::Browser),
            Ok(Some(method)) if method == "device" => Ok(LoginMethod::Device),
            Ok(Some(other)) => Err(invalid(format!(
                "login: method {other:?} is not offered; use \"browser\" or \"device\""
            ))),
            Err(failure) => Err(failure),
        };
        let command = method.map(|method| Command::Login {
            method,
            redirect_uri: None,
        });
        self.ask(command, Expect::Login)
    }

    /// A valid access token, refreshed first when it expires within `minTtlSecs`
    /// (default 0). Concurrent calls share one refresh.
    #[wasm_bindgen(js_name = getAccessToken, unchecked_return_type = "Promise<string>")]
    pub fn get_access_token(&self, options: Option<TokenOptions>) -> Promise {
        let command =
            option_secs(options.as_deref(), "minTtlSecs").map(|min_ttl_secs| Command::GetToken {
                min_ttl_secs: min_ttl_secs.unwrap_or(0),
            });
        self.ask(command, Expect::Token)
    }

    /// A resource server answered 401 to `accessToken`: refreshes once (unless a newer
    /// token exists already) and resolves with the token to retry with.
    #[wasm_bindgen(js_name = tokenRejected, unchecked_return_type = "Promise<string>")]
    pub fn token_rejected(
        &self,
        #[wasm_bindgen(js_name = accessToken)] access_token: String,
    ) -> Promise {
        let access_token = Secret::new(access_token);
        self.ask(Ok(Command::TokenRejected { access_token }), Expect::Token)
    }

    /// Ends the session: deletes it from storage, then revokes the tokens at the provider
    /// (`force`: only deletes). Resolves with what each server call did.
    #[wasm_bindgen(unchecked_return_type = "Promise<LogoutResult>")]
    pub fn logout(&self, options: Option<LogoutOptions>) -> Promise {
        let command = option_bool(options.as_deref(), "force").map(|force| Command::Logout {
            force: force.unwrap_or(false),
        });
        self.ask(command, Expect::Logout)
    }

    /// Who is signed in, until when, and any storage problem.
    #[wasm_bindgen(unchecked_return_type = "Promise<Status>")]
    pub fn status(&self) -> Promise {
        self.ask(Ok(Command::Status), Expect::Status)
    }

    /// Calls `listener` with every `SessionEvent` from now on.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: SessionEvent) => void")] listener: Function,
    ) {
        self.listeners.borrow_mut().push(listener);
    }

    /// Stops the session (storage keeps it). Later calls reject with code "closed".
    pub fn close(&self) {
        let _ = self.mailbox.send(SessionMsg::Stop);
    }
}

impl Session {
    /// `Session.open` for Rust code compiled to wasm: the same, without the promise.
    pub async fn connect(
        config: &JsValue,
        options: Option<SessionOptions>,
    ) -> Result<Session, JsValue> {
        Session::start(config, options).await.map_err(JsValue::from)
    }

    async fn start(config: &JsValue, options: Option<SessionOptions>) -> Result<Session, Failure> {
        let mut config = parse_config(config)?;
        if config.client_secret.is_some() {
            // Anyone can read an extension's or a page's code: the secret would be public.
            return Err(Failure::new(
                "config",
                "config: client_secret cannot be kept secret in a browser; register a public \
                 client (token_endpoint_auth_method \"none\") and let PKCE protect the code",
            ));
        }
        if config.redirect_uri.is_none() {
            config.redirect_uri = glue::default_redirect_uri();
        }
        let custom = match options.as_deref().map(|o| property(o, "storage")) {
            Some(value) if !value.is_undefined() && !value.is_null() => {
                Some(value.unchecked_into::<SessionStorage>())
            }
            _ => None,
        };
        // Encryption at rest: on by default for the default storage, opt-in for the
        // embedder's (which may be shared with contexts that do not have the key).
        let encrypt = option_bool(options.as_deref(), "encryptAtRest")?;
        let cipher = glue::session_cipher();
        if encrypt == Some(true) && cipher.is_none() {
            return Err(invalid(
                "options.encryptAtRest: this context has no WebCrypto (crypto.subtle, secure \
                 contexts only) or no IndexedDB to keep the key in",
            ));
        }
        let seal = encrypt.unwrap_or(custom.is_none());
        let storage = match custom {
            Some(storage) => storage,
            None => glue::default_storage_js()
                .map_err(|e| Failure::new("storage", glue::describe(&e)))?,
        };
        let key = option_string(options.as_deref(), "storageKey")?
            .unwrap_or_else(|| format!("tessera.session.{}", config.client_id));
        // Before the first write: chrome.storage.local closed to content scripts.
        let restricted = JsFuture::from(glue::restrict_storage(&storage)).await;
        let mut warning = restricted.ok().and_then(|w| w.as_string());
        if seal && cipher.is_none() {
            let why = "the session is stored unencrypted: this context has no WebCrypto \
                       (crypto.subtle, secure contexts only) or no IndexedDB";
            glue::warn(why);
            warning = Some(warning.map_or_else(|| why.to_owned(), |w| format!("{w}; {why}")));
        }
        let launcher = match options.as_deref().map(|o| property(o, "launcher")) {
            Some(value) if !value.is_undefined() && !value.is_null() => Some(
                value
                    .dyn_into::<Function>()
                    .map_err(|_| invalid("options.launcher must be a function"))?,
            ),
            _ => glue::default_launcher(),
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Failure::new("config", format!("no secure randomness: {e}")))?;
        let listeners = Rc::new(RefCell::new(Vec::new()));
        let store = Store::new(storage, key, cipher, seal, warning);
        // Browsers have no terminal to paste into.
        let options = DriverOptions {
            can_prompt_for_code: false,
            ..DriverOptions::default()
        };
        let mut driver = Driver::new(config, seed, now(), options);
        // The driver's first action is the load: done here, awaited, so `open` resolves
        // with the session as storage has it.
        let _ = driver.poll_action();
        let loaded = store.load().await;
        if let Ok(Some(loaded)) = &loaded {
            // A session stored in plaintext (before encryption at rest) is sealed now.
            store.migrate(loaded).await;
        }
        let input = storage::input(loaded);
        let _ = driver.handle(now(), input);
        let adapters = Adapters {
            store,
            launcher,
            listeners: listeners.clone(),
        };
        Ok(Session {
            mailbox: Mailbox::new(driver, adapters),
            listeners,
        })
    }

    /// Hands `command` to the session; the promise settles with its answer.
    fn ask(&self, command: Result<Command, Failure>, expect: Expect) -> Promise {
        let mailbox = self.mailbox.clone();
        Promise::new(&mut |resolve, reject| {
            let sent = command.clone().and_then(|command| {
                let waiting = Waiting {
                    expect,
                    resolve,
                    reject: reject.clone(),
                };
                mailbox
                    .send(SessionMsg::Call(command, waiting))
                    .map_err(|_| Failure::closed())
            });
            if let Err(failure) = sent {
                let _ = reject.call1(&JsValue::UNDEFINED, &failure.to_js());
            }
        })
    }
}

impl Drop for Session {
    /// `session.free()` (or garbage collection with weak references) stops the actor.
    fn drop(&mut self) {
        if !self.mailbox.is_closed() {
            let _ = self.mailbox.send(SessionMsg::Stop);
        }
    }
}

fn parse_config(config: &JsValue) -> Result<Config, Failure> {
    let json = js_sys::JSON::stringify(config)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| invalid("config must be an object (the engine's Config as JSON)"))?;
    serde_json::from_str(&json).map_err(|e| Failure::new("config", format!("config: {e}")))
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure::new("invalid_argument", message)
}

fn property(object: &Object, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `options[name]` as a string; absent is `None`, any other type an error.
fn option_string(options: Option<&Object>, name: &str) -> Result<Option<String>, Failure> {
    let Some(value) = options.map(|o| property(o, name)) else {
        return Ok(None);
    };
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| invalid(format!("options.{name} must be a string")))
}

fn option_bool(options: Option<&Object>, name: &str) -> Result<Option<bool>, Failure> {
    let Some(value) = options.map(|o| property(o, name)) else {
        return Ok(None);
    };
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_bool()
        .map(Some)
        .ok_or_else(|| invalid(format!("options.{name} must be a boolean")))
}

/// A whole, non-negative number of seconds.
fn option_secs(options: Option<&Object>, name: &str) -> Result<Option<u64>, Failure> {
    let Some(value) = options.map(|o| property(o, name)) else {
        return Ok(None);
    };
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        // 2^53: beyond it the number is no longer a whole count of seconds.
        Some(secs) if secs.is_finite() && secs >= 0.0 && secs.fract() == 0.0 && secs < 9.0e15 => {
            Ok(Some(secs as u64))
        }
        _ => Err(invalid(format!(
            "options.{name} must be a whole number of seconds, 0 or more"
        ))),
    }
}
