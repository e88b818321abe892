//! The device flow's `slow_down`, with the host's real timer.

use super::*;

/// The one slow test (about 8 s), because RFC 8628 §3.5's step is five real seconds and
/// the host's timer is what is under test. Polls: `authorization_pending` (the interval of
/// 1 s stays), `slow_down` (the next poll waits 1 + 5 s), then tokens. The pending poll
/// comes first so that the 1 s gap it leaves is the baseline the 6 s gap is compared with,
/// measured on the same machine in the same run. That the increase also holds for every
/// later poll is engine arithmetic, pinned with a simulated clock by
/// `specs/device/slow-down-twice.toml`; repeating it here would cost another six seconds.
#[tokio::test(flavor = "multi_thread")]
async fn device_flow_slow_down_adds_five_seconds_to_the_polling_interval() {
    const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
    let mut server = Server::new_async().await;
    let issued = Hits::default();
    let polls = Hits::default();
    let device = server
        .mock("POST", "/device")
        .with_header("content-type", "application/json")
        .with_body_from_request(issued.body(
            r#"{"device_code":"dc-1","user_code":"WDJBMJHT","verification_uri":"https://op.example/device","expires_in":600,"interval":1}"#,
        ))
        .expect(1)
        .create_async()
        .await;
    let mut poll = |body: &str, status: usize| {
        server
            .mock("POST", "/token")
            .match_body(Matcher::AllOf(vec![
                Matcher::UrlEncoded("grant_type".into(), DEVICE_GRANT.into()),
                Matcher::UrlEncoded("device_code".into(), "dc-1".into()),
            ]))
            .with_status(status)
            .with_header("content-type", "application/json")
            .with_body_from_request(polls.body(body))
            .expect(1)
    };
    let pending = poll(r#"{"error":"authorization_pending"}"#, 400)
        .create_async()
        .await;
    let slow_down = poll(r#"{"error":"slow_down"}"#, 400).create_async().await;
    let granted = poll(&tokens_json("at-dev", "rt-dev", 3600), 200)
        .create_async()
        .await;
    let stray = stray_posts(&mut server).await;
    let mut host = Host::start(config(&server.url()), None).await;

    let login = tokio::spawn({
        let client = host.client.clone();
        async move { client.login(LoginMethod::Device).await }
    });
    let code = host
        .event(|e| match e {
            HostEvent::UserCode(code) => Some(code),
            _ => None,
        })
        .await;
    // Shown exactly as issued: a server whose device page accepts only its own format
    // would refuse "WDJB-MJHT".
    assert_eq!(code.user_code, "WDJBMJHT");
    let report = within(login).await.expect("join").expect("device login");
    assert_eq!(report.scopes, vec!["api".to_owned()]);

    let issued = issued.times()[0];
    let polls = polls.times();
    assert_eq!(polls.len(), 3);
    let gaps: Vec<i64> = std::iter::once(issued)
        .chain(polls.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| i64::try_from(w[0].millis_until(w[1])).expect("gap"))
        .collect();
    // issued → pending, pending → slow_down: the provider's interval (1 s).
    assert!((900..1600).contains(&gaps[0]), "gaps {gaps:?}");
    assert!((900..1600).contains(&gaps[1]), "gaps {gaps:?}");
    // slow_down → next poll: five seconds more than the gap before it.
    let step = gaps[2] - gaps[1];
    assert!((4500..5500).contains(&step), "gaps {gaps:?}");

    device.assert_async().await;
    pending.assert_async().await;
    slow_down.assert_async().await;
    granted.assert_async().await;
    stray.assert_async().await;
    let stored = host.stored().await.expect("stored");
    assert_eq!(stored.access_token, Secret::new("at-dev"));
    assert_eq!(stored.refresh_token, Some(Secret::new("rt-dev")));
}

/// A second `login` while the first waits: the first caller gets `cancelled`, the second
/// is answered by its own flow (not by the first one's failure).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_login_replaces_the_first_and_gets_its_own_answer() {
    let mut server = Server::new_async().await;
    let device = server
        .mock("POST", "/device")
        .with_header("content-type", "application/json")
        .with_body(
            r#"{"device_code":"dc-1","user_code":"WDJBMJHT","verification_uri":"https://op.example/device","expires_in":600,"interval":1}"#,
        )
        .expect(2)
        .create_async()
        .await;
    let granted = server
        .mock("POST", "/token")
        .with_header("content-type", "application/json")
        .with_body(tokens_json("at-second", "rt-second", 3600))
        .expect(1)
        .create_async()
        .await;
    let mut host = Host::start(config(&server.url()), None).await;
    let user_code = |e| match e {
        HostEvent::UserCode(code) => Some(code),
        _ => None,
    };

    let first = tokio::spawn({
        let client = host.client.clone();
        async move { client.login(LoginMethod::Device).await }
    });
    host.event(user_code).await;
    let second = tokio::spawn({
        let client = host.client.clone();
        async move { client.login(LoginMethod::Device).await }
    });
    let replaced = within(first).await.expect("join");
    assert!(
        matches!(replaced, Err(Error::Cancelled)),
        "first login: {replaced:?}"
    );
    host.event(user_code).await;
    let report = within(second).await.expect("join").expect("second login");
    assert!(report.expires_at > tessera::engine::UnixMillis(0));
    device.assert_async().await;
    granted.assert_async().await;
    let stored = host.stored().await.expect("stored");
    assert_eq!(stored.access_token, Secret::new("at-second"));
}
