//! The load generator's HTTP client (hyper, one connection per task).

use std::net::SocketAddr;

use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::BEARER;

pub(crate) type Sender = SendRequest<Full<Bytes>>;

pub(crate) async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

pub(crate) fn request(
    method: Method,
    host: &HeaderValue,
    path: &str,
    body: Option<String>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host.clone())
        .header(header::AUTHORIZATION, format!("Bearer {BEARER}"));
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request")
}

pub(crate) async fn send(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Bytes) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

/// One request on a fresh connection, answered 2xx with JSON.
pub(crate) async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut sender = connect(addr).await;
    let (status, bytes) = send(
        &mut sender,
        request(method.clone(), &host, path, body.map(|b| b.to_string())),
    )
    .await;
    assert!(
        status.is_success(),
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}
