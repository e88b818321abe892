//! The provider: its answer to each request (well-formed, mutated or raw bytes) and the
//! redirect back.

use super::*;

pub(super) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_param(query, name)
}

pub(super) fn form_param(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A parameter of a form or JSON request body.
pub(super) fn body_param(body: &str, name: &str) -> Option<String> {
    if body.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        value.get(name)?.as_str().map(str::to_owned)
    } else {
        form_param(body, name)
    }
}

pub(super) fn is_refresh(request: &HttpRequest) -> bool {
    request.endpoint == Endpoint::Token
        && request
            .body
            .as_deref()
            .and_then(|b| body_param(b, "grant_type"))
            .is_some_and(|g| g == "refresh_token")
}

impl World {
    pub(super) fn id_token(&mut self, bytes: &mut Bytes) -> String {
        let iss = match bytes.u8() % 8 {
            0 => "https://evil.example",
            1 => "",
            _ => ISSUER,
        };
        let aud = match bytes.u8() % 8 {
            0 => serde_json::json!("someone-else"),
            1 => serde_json::json!([CLIENT, "other"]),
            2 => serde_json::json!(7),
            _ => serde_json::json!(CLIENT),
        };
        let nonce = match bytes.u8() % 8 {
            0 => Some("wrong-nonce".to_owned()),
            1 => None,
            _ => self.nonce.clone(),
        };
        let exp = match bytes.u8() % 8 {
            0 => (self.now / 1000) as i64 - 3600,
            1 => i64::MAX,
            2 => -1,
            _ => (self.now / 1000) as i64 + 3600,
        };
        let sub = bytes.pick(&["alice", "bob", ""]);
        self.counter += 1;
        let mut claims = serde_json::json!({
            "iss": iss, "aud": aud, "exp": exp, "iat": self.now / 1000, "sub": sub,
            "email": "alice@example.test", "jti": format!("j{:08}", self.counter),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let header = match bytes.u8() % 8 {
            0 => r#"{"alg":"RS256","kid":"k1"}"#,
            1 => "not json",
            _ => r#"{"alg":"none"}"#,
        };
        let signature = match bytes.u8() % 4 {
            0 => "c2lnbmF0dXJl",
            _ => "",
        };
        match bytes.u8() % 16 {
            0 => "a.b".to_owned(),
            1 => format!("{}.!!!.", b64url(header.as_bytes())),
            _ => {
                let token = format!(
                    "{}.{}.{signature}",
                    b64url(header.as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                // Unique (its `jti`): the secret check finds it only where it was put.
                self.secrets.push(token.clone());
                token
            }
        }
    }

    /// A token endpoint success, well-formed or with one member made hostile.
    pub(super) fn token_success(&mut self, bytes: &mut Bytes, request: &HttpRequest) -> String {
        let body = request.body.clone().unwrap_or_default();
        let grant_type = body_param(&body, "grant_type").unwrap_or_default();
        let (grant, generation) = if grant_type == "refresh_token" {
            body_param(&body, "refresh_token")
                .and_then(|t| self.refresh_tokens.get(&t).copied())
                .map(|(g, n)| (g, n + 1))
                .unwrap_or((u32::MAX, 0))
        } else {
            self.next_grant += 1;
            (self.next_grant - 1, 0)
        };
        let mut fields: Vec<(&str, String)> = Vec::new();
        let access = self.secret("AT");
        let access = match bytes.u8() % 16 {
            0 => "12345".into(),
            1 => "\"\"".into(),
            2 => format!("\"{access}\\u0000\\n\""),
            3 => "null".into(),
            _ => format!("\"{access}\""),
        };
        fields.push(("access_token", access));
        match bytes.u8() % 16 {
            0 => {}
            1 => fields.push(("token_type", "\"DPoP\"".into())),
            2 => fields.push(("token_type", "42".into())),
            3 => fields.push(("token_type", "\"bearer\"".into())),
            _ => fields.push(("token_type", "\"Bearer\"".into())),
        }
        match bytes.u8() % 16 {
            0 => {}
            1 => fields.push(("expires_in", "-5".into())),
            2 => fields.push(("expires_in", "1e300".into())),
            3 => fields.push(("expires_in", "\"60\"".into())),
            4 => fields.push(("expires_in", "0".into())),
            5 => fields.push(("expires_in", "18446744073709551616".into())),
            6 => fields.push(("expires_in", "2".into())),
            7 => fields.push(("expires_in", "\"soon\"".into())),
            _ => fields.push(("expires_in", format!("{}", bytes.u16()))),
        }
        match bytes.u8() % 8 {
            0 => {}
            1 => fields.push(("refresh_token", "7".into())),
            2 => {
                if let Some(old) = body_param(&body, "refresh_token") {
                    fields.push(("refresh_token", format!("\"{old}\"")));
                }
            }
            _ if grant != u32::MAX => {
                let token = self.new_refresh_token(grant, generation);
                fields.push(("refresh_token", format!("\"{token}\"")));
            }
            _ => {}
        }
        if !bytes.u8().is_multiple_of(4) {
            let id_token = self.id_token(bytes);
            fields.push(("id_token", format!("\"{id_token}\"")));
        }
        match bytes.u8() % 8 {
            0 => fields.push(("scope", "\"openid offline_access\"".into())),
            1 => fields.push(("scope", "[\"x\"]".into())),
            _ => {}
        }
        if bytes.u8().is_multiple_of(16) {
            // A duplicate key: which one wins must not matter to safety.
            fields.push(("access_token", format!("\"{}\"", self.secret("AT"))));
        }
        let json = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect::<Vec<_>>()
            .join(",");
        match bytes.u8() % 32 {
            0 => format!("{{{json}"),
            1 => format!("[{{{json}}}]"),
            _ => format!("{{{json}}}"),
        }
    }

    pub(super) fn success_body(&mut self, bytes: &mut Bytes, request: &HttpRequest) -> String {
        match request.endpoint {
            Endpoint::Token => self.token_success(bytes, request),
            Endpoint::Discovery => {
                let issuer = if bytes.u8().is_multiple_of(8) {
                    "https://other.example"
                } else {
                    ISSUER
                };
                let iss_param = bytes.bool();
                let token = if bytes.u8().is_multiple_of(8) {
                    "http://op.example/token"
                } else {
                    "https://op.example/token"
                };
                format!(
                    r#"{{"issuer":"{issuer}","authorization_endpoint":"{ISSUER}/authorize","token_endpoint":"{token}","device_authorization_endpoint":"{ISSUER}/device","revocation_endpoint":"{ISSUER}/revoke","userinfo_endpoint":"{ISSUER}/userinfo","end_session_endpoint":"{ISSUER}/logout","authorization_response_iss_parameter_supported":{iss_param}}}"#
                )
            }
            Endpoint::DeviceAuthorization => {
                let device_code = self.secret("DC");
                let expires = bytes.pick(&["600", "-1", "0", "\"x\"", "1e300"]);
                let interval = bytes.pick(&["1", "0", "-3", "99999999999", "null"]);
                format!(
                    r#"{{"device_code":"{device_code}","user_code":"BCDF-GHJK","verification_uri":"{ISSUER}/activate","expires_in":{expires},"interval":{interval}}}"#
                )
            }
            Endpoint::Userinfo => {
                r#"{"sub":"alice","email":"alice@example.test","groups":["a","b\u0007"]}"#.into()
            }
            Endpoint::Derived => {
                let token = self.secret("DT");
                let expires = bytes.pick(&["300", "-1", "0", "\"60\"", "1e300", "86401"]);
                format!(r#"{{"token":"{token}","expires_in":{expires}}}"#)
            }
            _ => String::new(),
        }
    }

    /// Answers one request in flight.
    pub(super) fn answer_http(&mut self, bytes: &mut Bytes) {
        if self.in_flight.is_empty() {
            return;
        }
        let index = bytes.below(self.in_flight.len());
        let request = self.in_flight.remove(index);
        let id = request.id;
        let content_type = bytes.pick(&[
            "application/json",
            "application/json; charset=utf-8",
            "text/html",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ]);
        let mut headers = BTreeMap::new();
        if !content_type.is_empty() {
            headers.insert("content-type".to_owned(), content_type.to_owned());
        }
        if bytes.u8().is_multiple_of(8) {
            let date = bytes.pick(&[
                "Tue, 14 Nov 2023 22:13:20 GMT",
                "garbage",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
            ]);
            headers.insert("date".into(), date.into());
        }
        if bytes.u8().is_multiple_of(8) {
            let after = bytes.pick(&["1", "-1", "99999999999999", "soon"]);
            headers.insert("retry-after".into(), after.into());
        }
        let (status, body) = match bytes.u8() % 8 {
            0..=2 => (
                bytes.pick(&[200u16, 200, 200, 201]),
                self.success_body(bytes, &request),
            ),
            3 => {
                let code = bytes.pick(&[
                    "invalid_grant",
                    "invalid_client",
                    "invalid_request",
                    "authorization_pending",
                    "slow_down",
                    "expired_token",
                    "access_denied",
                    "temporarily_unavailable",
                    "server_error",
                    "unsupported_token_type",
                    "",
                ]);
                let status = bytes.pick(&[400u16, 401, 403, 429, 500, 503, 200]);
                (
                    status,
                    format!(
                        r#"{{"error":"{code}","error_description":"bad \u0007\r\n thing","error_uri":"javascript:alert(1)"}}"#
                    ),
                )
            }
            4 => {
                let kind = bytes.pick(&[
                    TransportErrorKind::Timeout,
                    TransportErrorKind::Connect,
                    TransportErrorKind::Redirect,
                    TransportErrorKind::Other,
                ]);
                self.input(DriverInput::HttpFailed {
                    id,
                    kind,
                    detail: "connection reset".into(),
                });
                return;
            }
            5 => {
                let status = bytes.pick(&[301u16, 302, 404, 413, 500, 502, 504]);
                let body = bytes.pick(&[
                    "<html><body>Bad Gateway</body></html>",
                    "",
                    "\u{feff}{}",
                    "{\"a\":",
                ]);
                (status, body.to_owned())
            }
            _ => {
                let status = if bytes.bool() { 200 } else { bytes.u16() };
                (status, bytes.text(4096))
            }
        };
        let body = if bytes.u8().is_multiple_of(64) {
            // Over the response limit (hosts cut bodies at max_response_bytes + 1).
            format!("{body}{}", " ".repeat(request.max_response_bytes + 1))
        } else {
            body
        };
        self.input(DriverInput::HttpResponse {
            id,
            status,
            headers,
            body,
        });
    }

    pub(super) fn callback_url(&mut self, bytes: &mut Bytes) -> String {
        let code = self.secret("CO");
        let state = match bytes.u8() % 8 {
            0 => Some("forged".to_owned()),
            1 => None,
            _ => self.state.clone(),
        };
        let iss = match bytes.u8() % 8 {
            0 => Some("https%3A%2F%2Fevil.example"),
            1 | 2 => None,
            _ => Some("https%3A%2F%2Fop.example"),
        };
        let mut params = Vec::new();
        match bytes.u8() % 8 {
            0 => params.push("error=access_denied&error_description=no%07thanks".to_owned()),
            1 => {}
            2 => params.push("code=".to_owned()),
            _ => params.push(format!("code={code}")),
        }
        if let Some(state) = state {
            params.push(format!("state={state}"));
        }
        if let Some(iss) = iss {
            params.push(format!("iss={iss}"));
        }
        let path = bytes.pick(&["/callback", "/callback", "/other", ""]);
        match bytes.u8() % 16 {
            0 => bytes.text(512),
            _ => format!("http://127.0.0.1:8400{path}?{}", params.join("&")),
        }
    }
}
