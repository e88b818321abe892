//! tessera's native host: runs the [`tessera_engine`] state machine for the `tessera` CLI
//! and for Rust programs.
//!
//! ```no_run
//! # async fn demo(options: tessera::ClientOptions) -> Result<(), Box<dyn std::error::Error>> {
//! let client = tessera::Client::start(options).await?;
//! let token = client.access_token().await?;          // cached, or refreshed once
//! # let _ = token;
//! # Ok(()) }
//! ```

mod actor;
pub mod browser;
mod client;
pub mod clock;
pub mod credentials;
mod events;
mod http;
pub mod loopback;
mod middleware;
pub mod profile;
mod published;
pub mod record;
mod replies;
pub mod shutdown;
pub mod store;

pub use client::{Client, ClientError, ClientOptions, IntoSessionStore, SharedHttp, TokenFuture};
pub use events::{
    DerivedToken, HandedOff, HostEvent, LoginReport, LogoutReport, SharedSecret, Token,
};
pub use loopback::LoopbackOptions;
pub use middleware::BearerAuth;
pub use replies::StatusReport;
pub use tessera_engine as engine;
