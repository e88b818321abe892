//! `tessera-serve` (also run as `tessera serve`): the token service over HTTP.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tessera_serve::{ServeOptions, Service};

/// A token service for apps and servers: sign-in over HTTP, fresh tokens for many users,
/// an API-key fallback. Routes and examples: README ("tessera serve").
#[derive(Debug, Parser)]
#[command(name = "tessera serve", version)]
struct Args {
    /// Port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8485, conflicts_with = "socket")]
    port: u16,
    /// Listen on this Unix socket instead (mode 0600).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Directory for profiles, the key, the token and the database.
    #[arg(long, env = "TESSERA_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// SQLite database file (default: <config dir>/serve.db).
    #[arg(long, conflicts_with = "database_url")]
    database: Option<PathBuf>,
    /// PostgreSQL instead (postgres://user@host/db): replicas share it.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// At most this many PostgreSQL connections.
    #[arg(long, default_value_t = 10)]
    database_pool: u32,
    /// Also accept requests addressed to this host name (repeatable). Loopback
    /// addresses and `localhost` are always accepted; any other Host is refused.
    #[arg(long = "allow-host")]
    allowed_hosts: Vec<String>,
    /// Allow cross-origin requests from this origin (repeatable). Default: no CORS.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// The URL browsers use to reach this service (for callback URLs).
    #[arg(long)]
    public_url: Option<String>,
    /// Refresh tokens this long before they expire.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    refresh_buffer: std::time::Duration,
    /// More logging on stderr (-v, -vv). Tokens are never logged.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,tessera_serve={level},tessera={level}"
        )))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tessera serve: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tessera serve: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let config_dir = args
        .config_dir
        .or_else(tessera::store::default_config_dir)
        .ok_or("no config directory: set --config-dir or TESSERA_CONFIG_DIR")?;
    let mut options = ServeOptions::new(config_dir);
    options.database = args.database;
    options.database_url = args.database_url;
    options.database_pool = args.database_pool;
    options.allowed_hosts = args.allowed_hosts;
    options.cors_origins = args.cors_origins;
    options.public_url = args.public_url;
    options.refresh_buffer_secs = args.refresh_buffer.as_secs();
    let service = Service::open(options, |name| std::env::var(name).ok())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(path) = &service.token_file {
        eprintln!("tessera serve: bearer token in {}", path.display());
    }
    match args.socket {
        Some(path) => {
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            let router = service.router("http://localhost");
            println!("READY {}", serde_json::json!({ "socket": path }));
            axum::serve(listener, router)
                .with_graceful_shutdown(termination())
                .await
                .map_err(|e| e.to_string())?;
        }
        None => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
                .await
                .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
            let address = listener.local_addr().map_err(|e| e.to_string())?;
            let url = format!("http://{address}");
            let router = service.router(&url);
            println!("READY {}", serde_json::json!({ "url": url }));
            axum::serve(listener, router)
                .with_graceful_shutdown(termination())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    // Let a refresh in flight store its answer before the process ends.
    tessera::shutdown::safe_to_exit(std::time::Duration::from_secs(30)).await;
    Ok(())
}

async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
