//! The small HTML pages the loopback server answers the browser with: self-contained (no
//! external resources, a CSP that forbids everything but inline style), never cached, and
//! with every caller-supplied message HTML-escaped (messages come from errors and may hold
//! markup an attacker put in a callback).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::CallbackPage;

/// Every page the server can send; [`CallbackPage`] is the caller-chosen subset.
pub(super) enum Page {
    Callback(CallbackPage),
    Waiting,
    Closed,
    Busy,
    NotFound,
    MethodNotAllowed,
    TooLong,
}

/// The full response for `page`: status, security headers and HTML.
pub(super) fn render(page: &Page) -> Response<Full<Bytes>> {
    let (status, title, text) = match page {
        Page::Callback(CallbackPage::Success) => (
            StatusCode::OK,
            "Signed in",
            "Signed in. You can close this tab and return to the terminal.".to_owned(),
        ),
        Page::Callback(CallbackPage::Failed { message }) => (
            StatusCode::OK,
            "Sign-in failed",
            format!("Sign-in failed: {}", escape(message)),
        ),
        Page::Callback(CallbackPage::Ignored { message }) => {
            let mut text = "This request was not for the current sign-in; tessera is still \
                            waiting."
                .to_owned();
            if !message.is_empty() {
                text = format!("{text}</p><p>{}", escape(message));
            }
            (StatusCode::OK, "Still waiting", text)
        }
        Page::Waiting => (
            StatusCode::OK,
            "Still waiting",
            "tessera is still waiting. Return to the terminal to see how the sign-in goes."
                .to_owned(),
        ),
        Page::Closed => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not waiting",
            "tessera is no longer waiting for a sign-in. Return to the terminal.".to_owned(),
        ),
        Page::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "tessera is busy with other requests. Reload this page in a moment.".to_owned(),
        ),
        Page::NotFound => (StatusCode::NOT_FOUND, "Not found", "Not found.".to_owned()),
        Page::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Only GET is accepted here.".to_owned(),
        ),
        Page::TooLong => (
            StatusCode::URI_TOO_LONG,
            "Request too long",
            "The request address is too long.".to_owned(),
        ),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · tessera</title><style>body{{font:16px/1.5 system-ui,sans-serif;\
         max-width:36em;margin:4em auto;padding:0 1em;color:#222}}h1{{font-size:1.3em}}\
         </style></head><body><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if matches!(page, Page::MethodNotAllowed) {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
