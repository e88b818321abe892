//! `tessera serve` on PostgreSQL: several replicas (processes) sharing one real database,
//! started by the tests (issue 15).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::pg::Pg;
use crate::serve::{JsonText, Serve, TOKEN, now_secs, write_profile};
use crate::support::*;

mod database;
mod one_refresh;

/// The replicas' shared sealing key (base64 of 32 bytes).
const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// One replica on `pg`, with a profile `test` written by `profile`.
fn replica(pg: &Pg, profile: &dyn Fn(&std::path::Path), args: &[&str]) -> Serve {
    let dir = tempfile::tempdir().expect("temp dir");
    profile(dir.path());
    let url = pg.url();
    let mut all = vec!["--database-url", url.as_str()];
    all.extend_from_slice(args);
    Serve::start_with(dir, &all, false, &[("TESSERA_SERVE_KEY", KEY)])
}

/// A profile `test` whose token endpoint is the counting stub (no discovery).
fn stub_profile(dir: &std::path::Path, stub: &Stub) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[profiles.test]\nclient_id = \"tessera-cli\"\ndiscovery = false\n\
             endpoints = {{ authorization = \"{u}/authorize\", token = \"{u}/token\" }}\n",
            u = stub.url
        ),
    )
    .expect("config.toml");
}

/// A profile `test` on `issuer` without an API key: when OAuth cannot answer, `/token`
/// says why instead of falling back.
fn oauth_only(dir: &std::path::Path, issuer: &str) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[profiles.test]\nissuer = \"{issuer}\"\nclient_id = \"tessera-cli\"\n\
             scopes = [\"openid\", \"offline_access\", \"email\"]\n"
        ),
    )
    .expect("config.toml");
}

fn replicas(pg: &Pg, provider: &Provider, args: &[&str]) -> Vec<Serve> {
    let issuer = provider.issuer.clone();
    (0..3)
        .map(|_| replica(pg, &|dir| write_profile(dir, &issuer, ""), args))
        .collect()
}

/// A token endpoint that counts how often each refresh token is used (what the real
/// provider cannot report per token), answering a rotated pair, and `invalid_grant` to
/// a token used twice.
struct Stub {
    url: String,
    uses: Arc<Mutex<HashMap<String, u32>>>,
}

async fn stub_provider() -> Stub {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::service::service_fn;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let uses: Arc<Mutex<HashMap<String, u32>>> = Default::default();
    let counted = uses.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let counted = counted.clone();
                    async move {
                        let body = request.into_body().collect().await?.to_bytes();
                        let form: HashMap<String, String> =
                            url::form_urlencoded::parse(&body).into_owned().collect();
                        let token = form.get("refresh_token").cloned().unwrap_or_default();
                        let n = {
                            let mut uses = counted.lock().unwrap();
                            let n = uses.entry(token.clone()).or_insert(0);
                            *n += 1;
                            *n
                        };
                        let (status, answer) = if n == 1 {
                            (
                                200,
                                json!({"access_token": format!("at-{token}"), "token_type": "Bearer",
                                         "expires_in": 3600, "refresh_token": format!("next-{token}")}),
                            )
                        } else {
                            (400, json!({"error": "invalid_grant"}))
                        };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Stub { url, uses }
}

/// Whether the provider's counter `name` reaches `at_least` within 20 s.
async fn eventually_counter(provider: &Provider, name: &str, at_least: u64) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if provider.counters().await[name].as_u64() >= Some(at_least) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Imports `users` sessions (refresh tokens `rt-{tag}-{i}`) through `base`, 16 at a time.
async fn import_users(base: &str, users: usize, tag: &str, expires: u64) {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut imports = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (http, base, next, tag) = (http.clone(), base.to_owned(), next.clone(), tag.to_owned());
        imports.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= users {
                    return;
                }
                let body = json!({"access_token": format!("at-{tag}-{i}"),
                                  "refresh_token": format!("rt-{tag}-{i}"), "expires_at": expires});
                let response = http
                    .put(format!("{base}/users/u{i}/credentials/test"))
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        });
    }
    while let Some(done) = imports.join_next().await {
        done.unwrap();
    }
}

/// Benchmark, not a test (`make bench-replicas`; BENCHMARKS.md): batch refresh of 10,000
/// users on one replica, then on three sharing the work, against the counting stub token
/// endpoint; prints the wall times. Asserts only that each refresh token was used once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with make bench-replicas"]
async fn bench_batch_refresh_three_replicas_against_one() {
    let pg = Pg::start();
    let stub = stub_provider().await;
    let profile = |dir: &std::path::Path| stub_profile(dir, &stub);
    let all: Vec<Serve> = (0..3).map(|_| replica(&pg, &profile, &[])).collect();
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let http = reqwest::Client::new();
    let batch = |url: String| {
        let http = http.clone();
        async move {
            http.post(format!("{url}/refresh?expiring_within=3600"))
                .bearer_auth(TOKEN)
                .timeout(Duration::from_secs(900))
                .send()
                .await
                .unwrap()
                .json_text()
                .await
        }
    };
    for round in 1..=2 {
        for replicas in [1usize, 3] {
            let tag = format!("r{round}x{replicas}");
            import_users(&all[0].url, users, &tag, now_secs() + 3000).await;
            let started = std::time::Instant::now();
            let mut runs = tokio::task::JoinSet::new();
            for replica in &all[..replicas] {
                runs.spawn(batch(replica.url.clone()));
            }
            let mut per_replica = Vec::new();
            while let Some(done) = runs.join_next().await {
                let body: Value = done.unwrap();
                assert_eq!(body["failed"], 0, "{body}");
                per_replica.push(body["refreshed"].as_u64().unwrap());
            }
            let took = started.elapsed();
            let uses = stub.uses.lock().unwrap();
            let used = uses
                .iter()
                .filter(|(t, _)| t.starts_with(&format!("rt-{tag}-")))
                .collect::<Vec<_>>();
            assert_eq!(used.len(), users, "every user refreshed");
            assert!(
                used.iter().all(|(_, n)| **n == 1),
                "each refresh token used once"
            );
            eprintln!(
                "round {round}, {replicas} replica(s): {users} refreshed in {:.2} s = {:.0} refreshes/s; per replica {per_replica:?}",
                took.as_secs_f64(),
                users as f64 / took.as_secs_f64()
            );
        }
    }
}

/// Polls `serve` until it answers `/token` for `user` (it learns of a session another
/// replica wrote from that replica's `NOTIFY`); at most 10 s.
async fn until_served(serve: &Serve, user: &str) -> Value {
    for _ in 0..500 {
        let (status, body) = serve.get(&format!("/token/test?user={user}")).await;
        if status == 200 {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{user} was never served by {}", serve.url);
}
