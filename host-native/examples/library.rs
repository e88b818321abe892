//! The README's library example ("Using the library"), compiled with the crate's examples
//! so it cannot rot; `tests/readme.rs` checks that the README shows these lines.
//!
//! Running it needs a real provider: `cargo run -p tessera --example library -- <issuer>
//! <client-id>` logs in with the browser and prints the token's expiry.

use tessera::engine::{Config, LoginMethod};
use tessera::store::{PassphraseSource, StoreChoice, open_store};
use tessera::{Client, ClientOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(client_id)) = (args.next(), args.next()) else {
        eprintln!("usage: library <issuer> <client-id>");
        return Ok(());
    };
    let dir = tessera::store::default_config_dir().ok_or("no config directory")?;
    // README begin
    let store = open_store(StoreChoice::Auto, &dir, "default", PassphraseSource::Env)?; // blocking
    let config = Config::new(issuer, client_id);
    let client = Client::start(ClientOptions::new(config, store)).await?;
    client.login(LoginMethod::Browser).await?;
    let token = client.access_token().await?; // lock-free when cached and fresh
    let retry = client.token_rejected(token.access_token).await?; // after a 401: one refresh
    // README end
    println!(
        "token valid until {} (ms since the epoch)",
        retry.expires_at.0
    );
    Ok(())
}
