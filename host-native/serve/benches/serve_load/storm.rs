//! Part 2: 1000 requests on an expired token; the provider must count one refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::{
    BEARER, Backend, Summary,
    client::{connect, request, send},
    env_or,
    load::percentile,
    now_secs,
};

pub(crate) async fn provider_counters(provider: &str, http: &reqwest::Client) -> Value {
    http.get(format!("{provider}/test/counters"))
        .send()
        .await
        .expect("counters")
        .json()
        .await
        .expect("counters json")
}

/// The service's `tessera_refreshes_total{profile="test"}`.
pub(crate) async fn refreshes_metric(http: &reqwest::Client, base: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(BEARER)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_refreshes_total{profile=\"test\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) async fn part_storm(backends: &[Backend<'_>], provider: &str, summary: &mut [Summary]) {
    let callers = env_or("SERVE_BENCH_STORM", 1000usize);
    let rounds = env_or("SERVE_BENCH_STORM_ROUNDS", 3usize);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(20))
        .build()
        .expect("reqwest");
    for backend in backends {
        let base = format!("http://{}", backend.service.addr("url"));
        // Sign in through the service: its start URL, then the provider's redirects (the
        // provider approves by itself) back to the service's callback.
        let start: Value = http
            .get(format!("{base}/auth/test/start?user=storm"))
            .bearer_auth(BEARER)
            .send()
            .await
            .expect("start")
            .json()
            .await
            .expect("start json");
        let url = start["authorization_url"]
            .as_str()
            .expect("authorization_url");
        let landed = http.get(url).send().await.expect("sign-in redirects");
        assert!(
            landed.status().is_success() && landed.url().path() == "/auth/test/callback",
            "sign-in ended at {} with {}",
            landed.url(),
            landed.status()
        );
    }
    let labels: Vec<&str> = backends.iter().map(|b| b.label).collect();
    println!(
        "\n## 2. {callers} concurrent GET /token/test?user=storm on an expired token ({rounds} rounds on {}, interleaved; local oidc-provider)",
        labels.join(", ")
    );
    for round in 1..=rounds {
        for (backend, summary) in backends.iter().zip(summary.iter_mut()) {
            storm_round(backend, provider, &http, callers, round, summary).await;
        }
    }
}

/// One storm: the user's tokens re-imported as expired, then `callers` requests at once.
pub(crate) async fn storm_round(
    backend: &Backend<'_>,
    provider: &str,
    http: &reqwest::Client,
    callers: usize,
    round: usize,
    summary: &mut Summary,
) {
    let service = backend.service;
    let addr = service.addr("url");
    let base = format!("http://{addr}");
    // The session as stored now (valid: the export does not refresh it).
    let exported: Value = http
        .get(format!("{base}/users/storm/credentials/test"))
        .bearer_auth(BEARER)
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("export json");
    let old_access = exported["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = exported["refresh_token"].as_str().expect("refresh token");

    let counted_before = refreshes_metric(http, &base).await;
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    // Every caller first opens its connection and has one request answered on it
    // (`/healthz`), 50 at a time: a burst of 1000 connects overflows the listen queue
    // (tokio's backlog is 1024) and the retransmissions, 200 ms and more, would be
    // measured instead of the service. Then all are released at once after the import.
    let connected = Arc::new(Barrier::new(callers + 1));
    let barrier = Arc::new(Barrier::new(callers + 1));
    let connecting = Arc::new(tokio::sync::Semaphore::new(50));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (connected, barrier) = (connected.clone(), barrier.clone());
        let (host, connecting) = (host.clone(), connecting.clone());
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore");
            let mut sender = connect(addr).await;
            let (status, _) =
                send(&mut sender, request(Method::GET, &host, "/healthz", None)).await;
            assert_eq!(status, StatusCode::OK, "healthz");
            drop(permit);
            sender.ready().await.expect("ready");
            connected.wait().await;
            barrier.wait().await;
            let sent = Instant::now();
            let (status, body) = send(
                &mut sender,
                request(Method::GET, &host, "/token/test?user=storm", None),
            )
            .await;
            (sent, Instant::now(), status, body)
        });
    }
    connected.wait().await;
    http.post(format!("{provider}/test/counters/reset"))
        .send()
        .await
        .expect("reset counters");
    // Expired ten seconds ago. (The service's background scheduler sees the expired
    // import too and joins the same single flight.)
    http.put(format!("{base}/users/storm/credentials/test"))
        .bearer_auth(BEARER)
        .json(&json!({
            "access_token": old_access,
            "refresh_token": refresh,
            "expires_at": now_secs() - 10,
        }))
        .send()
        .await
        .expect("import")
        .error_for_status()
        .expect("import accepted");
    let released = Instant::now();
    barrier.wait().await;
    let mut latencies = Vec::with_capacity(callers);
    let mut last = released;
    let mut first = None::<Instant>;
    let mut last_sent = released;
    let mut tokens = std::collections::BTreeSet::new();
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        let (sent, answered, status, body) = done.expect("caller");
        last = last.max(answered);
        last_sent = last_sent.max(sent);
        first = Some(first.map_or(answered, |f| f.min(answered)));
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status == StatusCode::OK && answer["source"] == "oauth" {
            tokens.insert(answer["access_token"].as_str().unwrap_or("").to_owned());
            latencies.push((answered - sent).as_micros() as u32);
        } else {
            failures += 1;
            if failures < 4 {
                println!("  failed: {status} {answer}");
            }
        }
    }
    latencies.sort_unstable();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counted = refreshes_metric(http, &base).await - counted_before;
    let counters = provider_counters(provider, http).await;
    let refreshes = &counters["token_requests"]["refresh_token"];
    let got_new = tokens.len() == 1 && !tokens.contains(&old_access);
    println!(
        "  {} round {round}: provider refresh requests {refreshes} (invalid_grant {}), {} of {callers} got a token ({} distinct, new: {got_new}), failures {failures}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; after the release: last request sent {:.1} ms, first answer {:.1} ms, last answer {:.1} ms; the service's tessera_refreshes_total rose by {counted}",
        backend.label,
        counters["refresh_invalid_grant"],
        latencies.len(),
        tokens.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        ms(last_sent - released),
        ms(first.unwrap_or(released) - released),
        ms(last - released),
    );
    summary.storm_p50_ms.push(percentile(&latencies, 0.5));
    summary.storm_p99_ms.push(percentile(&latencies, 0.99));
    summary
        .storm_refreshes
        .push(refreshes.as_u64().unwrap_or(0));
    assert_eq!(refreshes, 1, "exactly one refresh");
    assert_eq!(failures, 0, "every caller got a token");
    assert!(got_new, "every caller got the same, new token");
}
