//! Part 1: cached tokens under load, the service against the floor, round by round.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::{
    Backend, CACHED_TOKEN, FLOOR_BODY, Summary,
    client::call,
    env_or,
    load::{load, percentile, print_load},
    now_secs,
    procs::Proc,
};

pub(crate) async fn part_cached(backends: &[Backend<'_>], floor: &Proc, summary: &mut [Summary]) {
    let connections = env_or("SERVE_BENCH_CONNECTIONS", 64usize);
    let secs = env_or("SERVE_BENCH_SECS", 10u64);
    let warmup = Duration::from_secs(env_or("SERVE_BENCH_WARMUP_SECS", 2u64));
    let rounds = env_or("SERVE_BENCH_ROUNDS", 5usize);
    for backend in backends {
        let addr = backend.service.addr("url");
        call(
            addr,
            Method::PUT,
            "/users/u/credentials/test",
            Some(json!({
                "access_token": CACHED_TOKEN,
                "refresh_token": "not-used-by-this-part",
                "expires_at": now_secs() + 7200,
            })),
        )
        .await;
        let first = call(addr, Method::GET, "/token/test?user=u", None).await;
        assert_eq!(first["access_token"], CACHED_TOKEN, "{first}");
        assert_eq!(first["source"], "oauth", "{first}");
        let floor_first = serde_json::from_str::<Value>(FLOOR_BODY).expect("floor body");
        assert_eq!(
            floor_first.as_object().map(|o| o.len()),
            first.as_object().map(|o| o.len()),
            "the floor answers the same fields"
        );
    }
    let labels: Vec<&str> = backends.iter().map(|b| b.label).collect();
    println!(
        "\n## 1. Cached GET /token/test?user=u: {connections} keep-alive connections, {}s warm-up + {secs}s per run, {rounds} rounds (floor, then the service on {}, interleaved)",
        warmup.as_secs(),
        labels.join(", then ")
    );
    for round in 1..=rounds {
        println!("round {round}");
        let floor_load = load(
            floor.addr("url"),
            floor.pid(),
            "/token/test",
            connections,
            warmup,
            Duration::from_secs(secs),
        )
        .await;
        print_load("floor", &floor_load);
        for (backend, summary) in backends.iter().zip(summary.iter_mut()) {
            let service_load = load(
                backend.service.addr("url"),
                backend.service.pid(),
                "/token/test?user=u",
                connections,
                warmup,
                Duration::from_secs(secs),
            )
            .await;
            print_load(backend.label, &service_load);
            let ratio = service_load.rps() / floor_load.rps();
            println!(
                "  {}/floor: {ratio:.2}× req/s (target ≥ 0.70×: {})",
                backend.label,
                if ratio >= 0.7 { "met" } else { "MISSED" }
            );
            summary.cached_rps.push(service_load.rps());
            summary
                .cached_p99_ms
                .push(percentile(&service_load.latencies_us, 0.99));
            summary.cached_ratio.push(ratio);
        }
    }
    for (backend, summary) in backends.iter().zip(summary.iter()) {
        let mut ratios = summary.cached_ratio.clone();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{}: ratio range {:.2}–{:.2}×, median {:.2}×",
            backend.label,
            ratios[0],
            ratios[ratios.len() - 1],
            ratios[ratios.len() / 2]
        );
    }
}
