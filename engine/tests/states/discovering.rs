use tessera_engine::{Config, Effect, Error, Event, Input, LoginMethod, Method};

use crate::scenario::*;

fn discovering() -> Scenario {
    let mut s = Scenario::with_config(Config {
        scopes: vec!["openid".into()],
        ..Config::new(ISSUER, CLIENT)
    })
    .to_logged_out();
    let effects = s.input(Input::Login {
        method: LoginMethod::Browser,
        redirect_uri: Some(REDIRECT.into()),
    });
    let request = requests(&effects)[0];
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        format!("{ISSUER}/.well-known/openid-configuration")
    );
    assert_eq!(s.state(), "discovering");
    s
}

fn metadata(issuer: &str) -> String {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "device_authorization_endpoint": format!("{ISSUER}/device"),
        "revocation_endpoint": format!("{ISSUER}/revoke"),
        "authorization_response_iss_parameter_supported": true,
    })
    .to_string()
}

#[test]
fn metadata_continues_the_login_with_discovered_endpoints() {
    let mut s = discovering();
    let effects = s.respond(json(200, &metadata(ISSUER)));
    assert!(
        matches!(&effects[..], [Effect::OpenBrowser { url }] if url.starts_with(&format!("{ISSUER}/auth?")))
    );
}

#[test]
fn metadata_without_device_or_revocation_endpoints_is_supplemented_by_rfc8414() {
    let mut s = discovering();
    let openid = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
    });
    let effects = s.respond(json(200, &openid.to_string()));
    assert_eq!(
        requests(&effects)[0].url,
        format!("{ISSUER}/.well-known/oauth-authorization-server")
    );
    assert_eq!(s.state(), "discovering");
    // The supplement failing is no failure: the OpenID document alone serves.
    let effects = s.respond(json(500, "{}"));
    assert!(
        matches!(&effects[..], [Effect::OpenBrowser { .. }]),
        "{effects:?}"
    );
}

#[test]
fn a_different_issuer_in_the_metadata_fails_the_login() {
    let mut s = discovering();
    let effects = s.respond(json(200, &metadata("https://evil.example")));
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::IssuerMismatch { .. }
        }
    ));
}

#[test]
fn a_404_falls_back_to_the_rfc8414_location_once() {
    let mut s = discovering();
    let effects = s.respond(json(404, "{}"));
    assert_eq!(
        requests(&effects)[0].url,
        format!("{ISSUER}/.well-known/oauth-authorization-server")
    );
    let effects = s.respond(json(404, "{}"));
    assert!(matches!(single_event(&effects), Event::LoginFailed { .. }));
}

#[test]
fn advertised_iss_support_makes_iss_mandatory() {
    let mut s = discovering();
    let effects = s.respond(json(200, &metadata(ISSUER)));
    let Effect::OpenBrowser { url } = &effects[0] else {
        panic!()
    };
    let url = url::Url::parse(url).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let effects = s.input(Input::Callback {
        url: format!("{REDIRECT}?code=c&state={state}"),
    });
    assert!(matches!(
        single_event(&effects),
        Event::LoginFailed {
            error: Error::Callback {
                problem: tessera_engine::CallbackProblem::MissingIssuer
            }
        }
    ));
}
