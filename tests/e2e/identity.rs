//! Who `status` says is logged in, when the ID token names no one: the login asks the
//! provider's UserInfo endpoint, and `status` shows that identity with the groups the
//! provider names.

use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_userinfo_identity_and_groups() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    // Scope `openid` alone: the ID token carries `sub` only. The email and the groups are
    // asked for in UserInfo only (the `claims` parameter, OIDC Core §5.5).
    let profile = format!(
        "[profiles.default]\nissuer = \"{}\"\nclient_id = \"tessera-cli\"\nscopes = [\"openid\", \"offline_access\"]\n\
         [profiles.default.authorization_params]\nclaims = '{{\"userinfo\": {{\"email\": null, \"groups\": null}}}}'\n",
        provider.issuer
    );
    std::fs::write(tessera.dir.path().join("config.toml"), profile).expect("write profile");
    let recording = tessera.dir.path().join("login.toml");
    let login = tessera.run(&[
        "login",
        "--browser",
        "--record",
        recording.to_str().unwrap(),
    ]);
    assert_ok(&login, "login");
    assert!(
        stderr(&login).contains("Logged in as alice@example.test"),
        "{}",
        stderr(&login)
    );
    let recorded = std::fs::read_to_string(&recording).expect("recording");
    assert!(
        recorded.contains(r#"endpoint = "userinfo""#),
        "the identity came from UserInfo:\n{recorded}"
    );

    let status = tessera.run(&["status"]);
    assert_ok(&status, "status");
    let text = stdout(&status);
    assert!(text.contains("Logged in as alice@example.test"), "{text}");
    assert!(
        text.contains("groups   engineering, release-managers"),
        "{text}"
    );
    let json = tessera.run(&["status", "--json"]);
    let json: Value = serde_json::from_str(&stdout(&json)).expect("status JSON");
    assert_eq!(json["identity"]["email"], "alice@example.test");
    assert_eq!(
        json["identity"]["groups"],
        serde_json::json!(["engineering", "release-managers"])
    );
}
