//! The database itself: stopped and restarted, migrated from an older schema, unreachable
//! or newer than this tessera-serve.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_database_stopped_and_restarted_gives_typed_503s_and_loses_nothing() {
    let pg = Pg::start();
    let provider = Provider::start(&[("ACCESS_TOKEN_TTL", "3600")]);
    let serve = replica(&pg, &|dir| oauth_only(dir, &provider.issuer), &[]);
    serve.sign_in("dora").await;
    serve.sign_in("eli").await;
    let (_, cached) = serve.get("/token/test?user=dora").await;
    let eli = serve.export("eli").await;
    let gus = json!({"access_token": "at-gus", "refresh_token": "rt-gus", "expires_at": now_secs() + 3600});
    assert_eq!(serve.put("/users/gus/credentials/test", gus).await.0, 200);

    pg.stop_server();
    // A cached token that is still valid keeps being served.
    let (status, during) = serve.get("/token/test?user=dora").await;
    assert_eq!(
        (status, &during["access_token"]),
        (200, &cached["access_token"]),
        "{during}"
    );
    // What needs the database gets a typed 503, not a panic or a hang.
    let expired = json!({"access_token": "x", "refresh_token": "y", "expires_at": now_secs() - 5});
    let (status, body) = serve.put("/users/eli/credentials/test", expired).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("storage")),
        "{body}"
    );
    let (status, body) = serve.get("/auth/test/start?user=fay").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("storage")),
        "{body}"
    );

    // A user this replica knows but holds no running client for (an import drops it):
    // `/token` needs the database, and answers a typed 503 without it.
    let (status, body) = serve.get("/token/test?user=gus").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("storage")),
        "{body}"
    );
    // Still served from the cache, after the failures above.
    let (status, during) = serve.get("/token/test?user=dora").await;
    assert_eq!(
        (status, &during["access_token"]),
        (200, &cached["access_token"]),
        "{during}"
    );

    pg.start_server();
    // Recovered, and nothing was lost.
    let mut recovered = Value::Null;
    for _ in 0..30 {
        let (status, body) = serve.get("/users/eli/credentials/test").await;
        if status == 200 {
            recovered = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        recovered["refresh_token"], eli["refresh_token"],
        "{recovered}"
    );
    let (_, status) = serve.get("/auth/test/status?user=dora").await;
    assert_eq!(status["connected"], true, "{status}");
    let (status, body) = serve.get("/token/test?user=gus").await;
    assert_eq!(
        (status, body["access_token"].as_str()),
        (200, Some("at-gus")),
        "{body}"
    );
}

/// A database left at schema version 1 (as a tessera-serve of that schema wrote it) is
/// migrated to the current version when a replica starts, and its sessions survive: they
/// open with the same key and serve the same tokens.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_schema_1_is_migrated_at_start_and_keeps_its_sessions() {
    let pg = Pg::start();
    let profile = |dir: &std::path::Path| write_profile(dir, "http://127.0.0.1:9", "");
    let first = replica(&pg, &profile, &[]);
    let expires = now_secs() + 3600;
    for user in ["hal", "ida"] {
        let tokens = json!({"access_token": format!("at-{user}"), "refresh_token": format!("rt-{user}"),
                            "expires_at": expires});
        assert_eq!(
            first
                .put(&format!("/users/{user}/credentials/test"), tokens)
                .await
                .0,
            200
        );
    }
    drop(first);
    // Back to schema 1: undo migration 2 (the claim columns and the expiry index).
    let current = pg.sql("SELECT max(version) FROM schema_migrations");
    assert_eq!(current, "2", "update this test for the new migration");
    pg.sql(
        "BEGIN; DROP INDEX sessions_expiry; \
         ALTER TABLE sessions DROP COLUMN claimed_by, DROP COLUMN claim_until; \
         DELETE FROM schema_migrations WHERE version > 1; COMMIT",
    );
    assert_eq!(pg.sql("SELECT max(version) FROM schema_migrations"), "1");
    assert_eq!(pg.sql("SELECT count(*) FROM sessions"), "2");

    let second = replica(&pg, &profile, &[]);
    assert_eq!(
        pg.sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"),
        "1,2"
    );
    assert_eq!(
        pg.sql(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'sessions' AND column_name IN ('claimed_by', 'claim_until')"
        ),
        "2"
    );
    for user in ["hal", "ida"] {
        let exported = second.export(user).await;
        assert_eq!(exported["access_token"], format!("at-{user}"), "{exported}");
        assert_eq!(
            exported["refresh_token"],
            format!("rt-{user}"),
            "{exported}"
        );
        let (status, token) = second.get(&format!("/token/test?user={user}")).await;
        assert_eq!(
            (status, token["access_token"].as_str()),
            (200, Some(format!("at-{user}").as_str())),
            "{token}"
        );
    }
    // Schema 2's claims work on the migrated rows: a batch claims and tries both (the
    // provider at port 9 is unreachable, so both fail, and stay stored).
    let (status, batch) = second.post("/refresh?expiring_within=7200").await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["failed"], 2, "{batch}");
    assert_eq!(pg.sql("SELECT count(*) FROM sessions"), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_newer_database_is_refused_at_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(serve_bin())
        .args(["--config-dir", dir.path().to_str().unwrap(), "--port", "0"])
        .args([
            "--database-url",
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ])
        .env("TESSERA_SERVE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("unreachable"),
        "{stderr}"
    );

    let pg = Pg::start();
    let first = replica(
        &pg,
        &|dir| write_profile(dir, "http://127.0.0.1:9", ""),
        &[],
    );
    drop(first);
    pg.sql("INSERT INTO schema_migrations VALUES (99, 0)");
    let output = std::process::Command::new(serve_bin())
        .args(["--config-dir", dir.path().to_str().unwrap(), "--port", "0"])
        .args(["--database-url", &pg.url()])
        .env("TESSERA_SERVE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schema version 99"), "{stderr}");
}
