//! Part 1's load: connections hammering one route for a fixed time, and what it measured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode};

use crate::{
    client::{connect, request, send},
    procs::cpu_time,
};

pub(crate) struct Load {
    requests: u64,
    errors: u64,
    pub(crate) latencies_us: Vec<u32>,
    secs: f64,
    /// The server's CPU time during the measured window: (user, system).
    server_cpu: (Duration, Duration),
}

impl Load {
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// `connections` tasks, each on its own keep-alive connection, sending `path` back to
/// back for `warmup + duration`; only requests started after the warm-up count.
pub(crate) async fn load(
    addr: SocketAddr,
    pid: u32,
    path: &'static str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Load {
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(addr).await);
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let cpu_probe = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = cpu_time(pid);
        tokio::time::sleep_until(end.into()).await;
        let after = cpu_time(pid);
        (
            after.0.saturating_sub(before.0),
            after.1.saturating_sub(before.1),
        )
    });
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let host = host.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (status, body) =
                    send(&mut sender, request(Method::GET, &host, path, None)).await;
                let took = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                if status == StatusCode::OK && body.len() > 100 {
                    ok += 1;
                    latencies.push(took.as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    errors += 1;
                }
            }
            (ok, errors, latencies)
        });
    }
    let (mut requests, mut errors, mut latencies_us) = (0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (ok, failed, latencies) = done.expect("load task");
        requests += ok;
        errors += failed;
        latencies_us.extend(latencies);
    }
    latencies_us.sort_unstable();
    Load {
        requests,
        errors,
        latencies_us,
        secs: duration.as_secs_f64(),
        server_cpu: cpu_probe.await.expect("cpu probe"),
    }
}

pub(crate) fn print_load(label: &str, load: &Load) {
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / load.requests.max(1) as f64;
    let (user, system) = load.server_cpu;
    println!(
        "  {label:<8} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {}  server CPU {:.1} s = {:.1} µs/request ({:.1} user + {:.1} system)",
        load.rps(),
        percentile(&load.latencies_us, 0.50),
        percentile(&load.latencies_us, 0.99),
        percentile(&load.latencies_us, 1.0),
        load.errors,
        (user + system).as_secs_f64(),
        per_request(user + system),
        per_request(user),
        per_request(system),
    );
}

pub(crate) fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}
