//! Performs the engine's HTTP effects with reqwest and turns the outcome back into an
//! input. No decision about the answer is taken here: statuses, bodies and redirects go
//! to the engine as they are.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tessera_engine::{HttpRequest, Input, Method, TransportErrorKind};

/// A lazily built HTTP client: processes that never make a request (`tessera status`, a
/// library client serving cached tokens) never pay for TLS set-up (4–7 ms here: the
/// platform's root certificates are read and parsed). The actor calls
/// [`HttpExecutor::warm_up`] as soon as a request becomes likely (a refresh lock is taken,
/// a login or logout starts), so the set-up overlaps the lock and re-read instead of
/// delaying the request.
#[derive(Clone, Debug, Default)]
pub struct HttpExecutor {
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl HttpExecutor {
    /// Builds the client in the background (on the blocking pool: it reads files), unless
    /// it is built already.
    pub fn warm_up(&self) {
        if self.client.get().is_none() {
            let this = self.clone();
            tokio::task::spawn_blocking(move || {
                let _ = this.client();
            });
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                // ring instead of aws-lc: same TLS, a fraction of the build time.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    // Token, device and revocation endpoints must not be followed
                    // elsewhere (a redirect could leak the grant); the engine sees the 3xx.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot set up HTTPS: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Sends the request and reads at most `max_response_bytes + 1` bytes of the body, so
    /// the engine can tell an oversized body from one at the limit.
    pub async fn perform(&self, request: HttpRequest) -> Input {
        let id = request.id;
        let failed = |kind, detail: String| Input::HttpFailed { id, kind, detail };
        if self.client.get().is_none() {
            // Build (or wait for the warm-up) off the async workers.
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let _ = this.client();
            })
            .await;
        }
        let client = match self.client() {
            Ok(client) => client,
            Err(detail) => return failed(TransportErrorKind::Other, detail),
        };
        let timeout = Duration::from_millis(request.timeout_ms);
        let limit = request.max_response_bytes.saturating_add(1);
        let exchange = async {
            let mut builder = match request.method {
                Method::Get => client.get(&request.url),
                Method::Post => client.post(&request.url),
            };
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = request.body {
                builder = builder.body(body);
            }
            let mut response = builder.send().await?;
            let status = response.status().as_u16();
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in response.headers() {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                headers
                    .entry(name.as_str().to_ascii_lowercase())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => failed(
                TransportErrorKind::Timeout,
                format!("no answer within {} ms", request.timeout_ms),
            ),
            Ok(Err(error)) => failed(classify(&error), describe(error)),
            Ok(Ok((status, headers, body))) => Input::HttpResponse {
                id,
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
        }
    }
}

fn classify(error: &reqwest::Error) -> TransportErrorKind {
    if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_redirect() {
        TransportErrorKind::Redirect
    } else {
        TransportErrorKind::Other
    }
}

/// The error and its causes on one line, without the URL (which may carry a code).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
