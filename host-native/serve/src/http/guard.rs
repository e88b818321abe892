//! What every request passes before a handler: the Host check and the bearer token, and
//! the request metrics.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tessera_engine::Secret;

use super::AppState;
use crate::error::ApiError;

/// The dashboard's cookie, set from `/?token=` so the token leaves the address bar.
pub const COOKIE: &str = "tessera_serve";

/// Who may call: the bearer token, and the host names requests may be addressed to.
pub struct Guard {
    token: Secret,
    allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub fn new(token: Secret, allowed_hosts: Vec<String>) -> Self {
        Self {
            token,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn token_matches(&self, offered: &str) -> bool {
        bool::from(offered.as_bytes().ct_eq(self.token.expose().as_bytes()))
    }

    /// A request addressed to a loopback address, `localhost`, or a configured name.
    /// Anything else may be a DNS-rebinding page in the user's browser.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            }),
        }
        .to_ascii_lowercase();
        name == "localhost"
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || self.allowed_hosts.contains(&name)
    }
}

/// Every request: the Host check first (DNS rebinding), then the bearer token (but on
/// the browser callback), then the handler; its time goes to `/metrics`.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let response = if !state.guard.host_allowed(request.headers()) {
        ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this service answers requests addressed to loopback or its configured names only (--allow-host)",
        )
        .into_response()
    } else if route == super::CALLBACK_ROUTE {
        next.run(request).await
    } else {
        match refusal(&state, &request) {
            Some(refused) => refused,
            None => next.run(request).await,
        }
    };
    state
        .sessions
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

/// The routes as metric labels (no allocation per request).
fn route_label(matched: Option<&str>) -> &'static str {
    const ROUTES: &[&str] = &[
        "/token/{profile}",
        "/token/{profile}/rejected",
        super::CALLBACK_ROUTE,
        "/auth/{profile}/start",
        "/auth/{profile}/device",
        "/auth/{profile}/status",
        "/auth/{profile}/logout",
        "/refresh",
        "/users/{id}/credentials/{profile}",
        "/settings",
        "/metrics",
        "/healthz",
        "/",
    ];
    matched
        .and_then(|m| ROUTES.iter().find(|r| **r == m).copied())
        .unwrap_or("unmatched")
}

/// Why a request without a valid bearer token is refused, or `None` when it has one.
fn refusal(state: &AppState, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let dashboard = request.uri().path() == "/";
    let cookie = dashboard.then(|| dashboard_cookie(headers)).flatten();
    match bearer.or(cookie.as_deref()) {
        Some(token) if state.guard.token_matches(token) => None,
        Some(_) => Some(
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer token is not this service's (TESSERA_SERVE_TOKEN, or serve.token in the config directory)",
            )
            .into_response(),
        ),
        // The dashboard's link carries the token once; its handler checks it.
        None if dashboard && request.uri().query().is_some_and(|q| q.contains("token=")) => None,
        None => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "send `Authorization: Bearer <token>` (TESSERA_SERVE_TOKEN, or serve.token in the config directory)",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            Some(response)
        }
    }
}

fn dashboard_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_loopback_and_configured_hosts_pass() {
        let guard = Guard::new(Secret::new("t"), vec!["sidecar.internal".into()]);
        for ok in [
            "127.0.0.1:8485",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "127.5.5.5",
            "sidecar.internal:9",
        ] {
            assert!(guard.host_allowed(&host(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8485",
            "192.168.1.2",
            "127.0.0.1.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!guard.host_allowed(&host(bad)), "{bad}");
        }
        assert!(!guard.host_allowed(&HeaderMap::new()));
    }
}
