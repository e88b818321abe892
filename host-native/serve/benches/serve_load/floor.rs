//! The floor: a trivial axum route in its own process (this binary, SERVE_BENCH_ROLE=floor).

use std::io::{Read, Write};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::{BEARER, FLOOR_BODY};

pub(crate) async fn floor_token(headers: HeaderMap) -> axum::response::Response {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    match offered {
        Some(token) if bool::from(token.as_bytes().ct_eq(BEARER.as_bytes())) => {
            ([(header::CONTENT_TYPE, "application/json")], FLOOR_BODY).into_response()
        }
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

pub(crate) fn run_floor() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        println!("READY {}", json!({ "url": url }));
        std::io::stdout().flush().expect("flush");
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        let app = Router::new().route("/token/test", get(floor_token));
        axum::serve(listener, app).await.expect("serve");
    });
}
