//! The stub token endpoint (in this process), for part 3.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;

pub(crate) async fn stub_token(
    axum::extract::State(count): axum::extract::State<Arc<AtomicU64>>,
    body: String,
) -> axum::response::Response {
    if !body.split('&').any(|p| p == "grant_type=refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#,
        )
            .into_response();
    }
    let n = count.fetch_add(1, Ordering::Relaxed);
    let answer = json!({
        "access_token": format!("stub-access-{n:08}-0123456789abcdef0123456789abcdef"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("stub-refresh-{n:08}-0123456789abcdef0123456789abcdef"),
        "scope": "openid offline_access",
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        answer.to_string(),
    )
        .into_response()
}

pub(crate) async fn start_stub() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/token", post(stub_token))
        .with_state(count.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, count)
}

pub(crate) fn stub_profile(stub: SocketAddr) -> String {
    format!(
        r#"[profiles.test]
client_id = "tessera-cli"
scopes = ["openid", "offline_access"]
discovery = false
endpoints = {{ token = "http://{stub}/token", authorization = "http://{stub}/authorize" }}
"#
    )
}
