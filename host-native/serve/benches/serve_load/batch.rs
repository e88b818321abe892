//! Part 3: batch refresh of imported users, and memory per idle session.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method};
use serde_json::json;

use crate::{
    client::{call, connect, request, send},
    env_or, now_secs,
    procs::{proc_status, start_service},
    stub::stub_profile,
};

/// Imports users `prefix0 … prefix{n-1}` with `concurrency` connections.
pub(crate) async fn import_users(
    addr: SocketAddr,
    prefix: &str,
    n: usize,
    concurrency: usize,
    expires_at: u64,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, host, prefix) = (next.clone(), host.clone(), prefix.to_owned());
        tasks.spawn(async move {
            let mut sender = connect(addr).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let body = json!({
                    "access_token": format!("imported-access-{prefix}{i:06}-0123456789abcdef0123456789"),
                    "refresh_token": format!("imported-refresh-{prefix}{i:06}-0123456789abcdef0123456"),
                    "expires_at": expires_at,
                })
                .to_string();
                let path = format!("/users/{prefix}{i}/credentials/test");
                let (status, bytes) =
                    send(&mut sender, request(Method::PUT, &host, &path, Some(body))).await;
                assert!(
                    status.is_success(),
                    "import {path}: {status} {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("import task");
    }
    started.elapsed()
}

pub(crate) async fn part_batch(dir: &Path, stub: SocketAddr, stub_count: &AtomicU64) {
    let users = env_or("SERVE_BENCH_BATCH", 10_000usize);
    let concurrency = env_or("SERVE_BENCH_IMPORT_CONCURRENCY", 32usize);
    let service = start_service(dir, &stub_profile(stub));
    let addr = service.addr("url");
    println!(
        "\n## 3a. Batch refresh of {users} imported users (stub token endpoint in the bench process)"
    );
    // Expiring in 30 min: outside the 5 min buffer (the scheduler leaves them alone),
    // inside the batch's 60 min.
    let took = import_users(addr, "batch", users, concurrency, now_secs() + 1800).await;
    println!(
        "  import: {users} users in {:.1} s ({:.0} imports/s, {concurrency} in flight)",
        took.as_secs_f64(),
        users as f64 / took.as_secs_f64()
    );
    stub_count.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let answer = call(addr, Method::POST, "/refresh?expiring_within=3600", None).await;
    let wall = started.elapsed();
    let refreshed = answer["refreshed"].as_u64().unwrap_or(0);
    println!(
        "  POST /refresh?expiring_within=3600: {answer}\n  wall {:.2} s, {:.0} refreshes/s, stub saw {} refresh requests",
        wall.as_secs_f64(),
        refreshed as f64 / wall.as_secs_f64(),
        stub_count.load(Ordering::Relaxed)
    );
    let (rss, hwm, threads) = proc_status(service.pid());
    println!("  service after the batch: VmRSS {rss} kB, VmHWM {hwm} kB, {threads} threads");
    assert_eq!(refreshed as usize, users, "every user refreshed");
}

pub(crate) async fn part_memory(dir: &Path, stub: SocketAddr) {
    let users = env_or("SERVE_BENCH_IDLE", 100_000usize);
    let concurrency = env_or("SERVE_BENCH_IMPORT_CONCURRENCY", 32usize);
    let service = start_service(dir, &stub_profile(stub));
    let addr = service.addr("url");
    let pid = service.pid();
    println!("\n## 3b. Memory: {users} idle users imported into a fresh service");
    let idle_until = now_secs() + 86_400;
    // Warm-up with the same concurrency: runtime and blocking threads, SQLite's cache.
    let warm = 1000;
    import_users(addr, "warm", warm, concurrency, idle_until).await;
    let (rss0, hwm0, threads0) = proc_status(pid);
    println!(
        "  baseline (after {warm} warm-up imports): VmRSS {rss0} kB, VmHWM {hwm0} kB, {threads0} threads"
    );
    let took = import_users(addr, "idle", users, concurrency, idle_until).await;
    let (rss1, hwm1, threads1) = proc_status(pid);
    let db = std::fs::metadata(dir.join("serve.db")).map_or(0, |m| m.len());
    println!(
        "  import: {users} users in {:.1} s ({:.0} imports/s)",
        took.as_secs_f64(),
        users as f64 / took.as_secs_f64()
    );
    println!(
        "  after: VmRSS {rss1} kB, VmHWM {hwm1} kB, {threads1} threads; serve.db {:.1} MB",
        db as f64 / 1e6
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss2, hwm2, threads2) = proc_status(pid);
    println!("  2 s later: VmRSS {rss2} kB, VmHWM {hwm2} kB, {threads2} threads");
    let per = |after: u64, before: u64| (after.saturating_sub(before) * 1024) as f64 / users as f64;
    println!(
        "  per idle session: {:.0} B by VmRSS, {:.0} B by VmHWM (target ≤ 2048 B: {})",
        per(rss1, rss0),
        per(hwm1, hwm0),
        if per(rss1, rss0) <= 2048.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
