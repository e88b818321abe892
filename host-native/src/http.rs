//! Performs the engine's HTTP effects with reqwest and turns the outcome back into an
//! input. No decision about the answer is taken here: statuses, bodies and redirects go
//! to the engine as they are.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tessera_engine::driver::DriverInput as Input;
use tessera_engine::{HttpRequest, Method, TransportErrorKind};

/// The platform's certificate verification (rustls-platform-verifier, what reqwest uses by
/// default), created on first use: creating it reads and parses the system's root
/// certificates. Signatures are checked with the provider's algorithms, as the platform
/// verifier does, so only [`ServerCertVerifier::verify_server_cert`] needs the roots.
pub(crate) struct LazyPlatformVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyPlatformVerifier {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            inner: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl std::fmt::Debug for LazyPlatformVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyPlatformVerifier")
            .field("loaded", &self.inner.get().is_some())
            .finish()
    }
}

impl ServerCertVerifier for LazyPlatformVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A lazily built HTTP client: processes that never make a request (`tessera status`, a
/// library client serving cached tokens) never pay for it. Its costly part, reading and
/// parsing the platform's root certificates (4–7 ms here), is deferred further, to the
/// first TLS handshake ([`LazyPlatformVerifier`]): a plain-HTTP request (a loopback
/// provider) never waits for it. The actor calls [`HttpExecutor::warm_up`] as soon as a
/// request becomes likely (the refresh lock is taken, a login or logout starts), which
/// builds the client and loads the roots in the background, overlapping the lock and
/// re-read instead of delaying the request.
#[derive(Clone, Debug, Default)]
pub struct HttpExecutor {
    client: Arc<OnceLock<Result<Built, String>>>,
}

#[derive(Clone, Debug)]
struct Built {
    client: reqwest::Client,
    verifier: Arc<LazyPlatformVerifier>,
}

impl HttpExecutor {
    /// Builds the client in the background (on the blocking pool: it reads files), and
    /// with `tls` also loads the root certificates, unless that is done already. Without
    /// TLS the roots are left alone: loading them costs 4–7 ms of CPU, which on a small
    /// machine would compete with the very request being prepared.
    pub fn warm_up(&self, tls: bool) {
        let pending = match self.client.get() {
            None => true,
            Some(Ok(built)) => tls && built.verifier.inner.get().is_none(),
            Some(Err(_)) => false,
        };
        if pending {
            let this = self.clone();
            tokio::task::spawn_blocking(move || {
                if let Ok(built) = this.built()
                    && tls
                {
                    let _ = built.verifier.get();
                }
            });
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.built().map(|built| &built.client)
    }

    fn built(&self) -> Result<&Built, String> {
        self.client
            .get_or_init(|| {
                // ring instead of aws-lc: same TLS, a fraction of the build time.
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let verifier = Arc::new(LazyPlatformVerifier::new(provider.clone()));
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("cannot set up HTTPS: {e}"))?
                    .dangerous()
                    .with_custom_certificate_verifier(verifier.clone())
                    .with_no_client_auth();
                let client = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    // Token, device and revocation endpoints must not be followed
                    // elsewhere (a redirect could leak the grant); the engine sees the 3xx.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
                Ok(Built { client, verifier })
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

/// Whether the provider is reached over HTTPS (so warming up the HTTP client should also
/// load the root certificates): the configured token endpoint or issuer, or the token
/// endpoint discovery stored with the session.
pub(crate) fn uses_tls(
    config: &tessera_engine::Config,
    session: Option<&tessera_engine::StoredSession>,
) -> bool {
    let stored = session.and_then(|s| s.endpoints.token.as_deref());
    [
        config.endpoints.token.as_deref(),
        config.issuer.as_deref(),
        stored,
    ]
    .into_iter()
    .flatten()
    .any(|url| url.starts_with("https:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Building the client loads no certificates; a certificate check loads them and
    /// rejects what it cannot verify (here: not a certificate at all).
    #[test]
    fn roots_are_loaded_on_the_first_certificate_check_only() {
        let http = HttpExecutor::default();
        let built = http.built().expect("client");
        assert!(built.verifier.inner.get().is_none(), "no roots at build");
        assert!(!built.verifier.supported_verify_schemes().is_empty());
        let name = ServerName::try_from("id.example.com").expect("name");
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let verdict = built
            .verifier
            .verify_server_cert(&garbage, &[], &name, &[], UnixTime::now());
        assert!(verdict.is_err(), "{verdict:?}");
        assert!(
            built.verifier.inner.get().is_some(),
            "roots loaded by the check"
        );
    }
}
