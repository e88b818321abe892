//! `tessera login`: picks the method, shows the user what to do, saves the profile.

use std::io::{BufRead, IsTerminal};

use tessera::browser::{self, BrowserSupport};
use tessera::engine::{Endpoint, Error, LoginMethod};
use tessera::profile::{ConfigFile, ProfileSpec};
use tessera::{Client, HostEvent};

use super::args::{Cli, LoginArgs};
use super::session::{config_dir, fail_engine, open, profile};
use super::{Exit, output};

/// The login flags as a profile layer.
fn flags(args: &LoginArgs) -> ProfileSpec {
    let scopes: Vec<String> = args
        .scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect();
    let mut spec = ProfileSpec {
        preset: args.preset.clone(),
        issuer: args.issuer.clone(),
        client_id: args.client_id.clone(),
        scopes: (!scopes.is_empty()).then_some(scopes),
        port: args.port,
        insecure_http: args.insecure_http.then_some(true),
        ..ProfileSpec::default()
    };
    spec.endpoints.authorization = args.authorization_endpoint.clone();
    spec.endpoints.token = args.token_endpoint.clone();
    spec.endpoints.device_authorization = args.device_endpoint.clone();
    spec.endpoints.revocation = args.revocation_endpoint.clone();
    spec.endpoints.userinfo = args.userinfo_endpoint.clone();
    spec
}

pub async fn run(cli: &Cli, args: &LoginArgs) -> Exit {
    let layer = flags(args);
    let spec = match profile(cli, &layer) {
        Ok(spec) => spec,
        Err(exit) => return exit,
    };
    let explicit = if args.headless {
        None
    } else if args.browser {
        Some(LoginMethod::Browser)
    } else if args.device {
        Some(LoginMethod::Device)
    } else if args.paste {
        Some(LoginMethod::Paste)
    } else {
        None
    };
    let support = if args.headless {
        BrowserSupport::Declined
    } else {
        browser::detect(|name| std::env::var(name).ok())
    };
    // Without a usable browser, prefer the device flow (falling back to paste below).
    let (method, headless_reason) = match (explicit, spec.login) {
        (Some(method), _) => (method, None),
        (None, Some(LoginMethod::Browser)) | (None, None)
            if support != BrowserSupport::Available =>
        {
            (LoginMethod::Device, support.reason())
        }
        (None, Some(method)) => (method, None),
        (None, None) => (LoginMethod::Browser, None),
    };
    let client = match open(cli, &spec, !args.no_open, None).await {
        Ok(client) => client,
        Err(exit) => return exit,
    };
    if let Some(reason) = headless_reason {
        output::note(&format!(
            "No browser here ({reason}): using the device flow."
        ));
    }
    let mut result = login_with(&client, method).await;
    let no_device_endpoint = matches!(
        &result,
        Err(Error::MissingEndpoint {
            endpoint: Endpoint::DeviceAuthorization,
            ..
        })
    );
    if headless_reason.is_some() && no_device_endpoint {
        output::note("The provider offers no device flow; paste the code instead.");
        result = login_with(&client, LoginMethod::Paste).await;
    }
    match result {
        Ok(report) => {
            let who = report
                .identity
                .as_ref()
                .and_then(|i| i.display())
                .unwrap_or("(no identity claims)");
            output::note(&format!("Logged in as {}.", output::printable(who)));
            if let Err(error) = save_profile(cli, &layer) {
                output::error(&format!(
                    "logged in, but the profile could not be saved: {error}"
                ));
                return Exit::Config;
            }
            Exit::Ok
        }
        Err(error) => fail_engine(&error),
    }
}

/// Runs one login while showing its events; Ctrl-C cancels it.
async fn login_with(client: &Client, method: LoginMethod) -> Result<tessera::LoginReport, Error> {
    let mut events = client.events();
    let spinner = Spinner::default();
    let shower = {
        let (client, spinner) = (client.clone(), spinner.clone());
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                show(&client, &spinner, event).await;
            }
        })
    };
    let login = client.login(method);
    tokio::pin!(login);
    let result = tokio::select! {
        result = &mut login => result,
        _ = tokio::signal::ctrl_c() => {
            client.cancel();
            login.await
        }
    };
    shower.abort();
    spinner.stop();
    result
}

/// A spinner on stderr while the device flow waits for approval (terminals only).
#[derive(Clone, Default)]
struct Spinner(std::sync::Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>);

impl Spinner {
    fn start(&self, message: &'static str) {
        if !std::io::stderr().is_terminal() {
            output::note(message);
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
    }

    fn stop(&self) {
        if let Some(bar) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

async fn show(client: &Client, spinner: &Spinner, event: HostEvent) {
    match event {
        HostEvent::OpenBrowser { url } => {
            output::note("Opening your browser to sign in. If it does not open, visit:");
            output::note(&format!("  {}", output::printable(&url)));
        }
        HostEvent::UserCode(code) => {
            output::note(&format!(
                "To sign in, visit {}",
                output::printable(&code.verification_uri)
            ));
            // Exactly as issued, set apart by blank space (RFC 8628 §3.3).
            output::note(&format!(
                "and enter the code:\n\n    {}\n",
                output::printable(&code.user_code)
            ));
            if let Some(complete) = &code.verification_uri_complete {
                output::note(&format!("(or open {})", output::printable(complete)));
                if std::io::stderr().is_terminal()
                    && let Ok(qr) = qrcode::QrCode::new(complete.as_bytes())
                {
                    let art = qr
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build();
                    output::note(&art);
                }
            }
            spinner.start("Waiting for approval…");
        }
        HostEvent::PromptForCode { url } => {
            output::note("Open this URL, sign in, then paste the code shown:");
            output::note(&format!("  {}", output::printable(&url)));
            let client = client.clone();
            tokio::task::spawn_blocking(move || read_pastes(&client));
        }
        HostEvent::CallbackIgnored { reason } => {
            output::note(&format!("Ignored a redirect: {reason}"))
        }
        HostEvent::StorageFailed { detail } => output::error(&format!("storage: {detail}")),
        _ => {}
    }
}

/// Reads lines until one is accepted (blocking: runs on its own thread).
fn read_pastes(client: &Client) {
    let stdin = std::io::stdin();
    let runtime = tokio::runtime::Handle::current();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match runtime.block_on(client.paste(line)) {
            Ok(()) => break,
            Err(rejected) => output::note(&format!("{rejected}. Paste again:")),
        }
    }
}

/// Remembers the flags given to `login` so later commands need none.
pub(super) fn save_profile(
    cli: &Cli,
    layer: &ProfileSpec,
) -> Result<(), tessera::profile::ProfileError> {
    let dir = config_dir(cli);
    let mut file = ConfigFile::load(&dir)?;
    let entry = file.profiles.entry(cli.global.profile.clone()).or_default();
    *entry = entry.overlay(layer);
    file.save(&dir)
}
