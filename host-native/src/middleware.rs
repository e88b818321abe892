//! A reqwest middleware for resource requests: adds the bearer token and, when the
//! resource server answers 401, has the engine refresh once and retries once.
//!
//! ```no_run
//! # async fn demo(client: tessera::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(tessera::BearerAuth::new(client))
//!     .build();
//! let response = http.get("https://api.example.com/me").send().await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! The refresh after a 401 goes through [`crate::Client::token_rejected`]: when several
//! requests fail with the same token at once, the engine refreshes once for all of them,
//! and a token that was already replaced is not refreshed again.

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::Client;

/// Adds `Authorization: Bearer …` from a [`Client`]; on 401, one refresh and one retry.
#[derive(Clone, Debug)]
pub struct BearerAuth {
    client: Client,
}

impl BearerAuth {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn authorize(request: &mut Request, token: &crate::SharedSecret) -> reqwest_middleware::Result<()> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(reqwest_middleware::Error::middleware)?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = self
            .client
            .access_token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        // A streaming body cannot be sent twice: such requests get no retry.
        let retry = request.try_clone();
        authorize(&mut request, &token.access_token)?;
        let response = next.clone().run(request, extensions).await?;
        let (StatusCode::UNAUTHORIZED, Some(mut retry)) = (response.status(), retry) else {
            return Ok(response);
        };
        let fresh = self
            .client
            .token_rejected(token.access_token)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        authorize(&mut retry, &fresh.access_token)?;
        next.run(retry, extensions).await
    }
}
