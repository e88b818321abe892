//! Performs the engine's HTTP effects with `fetch` and turns the outcome back into an
//! input. As in the native host, nothing is decided here: statuses and bodies go to the
//! engine as they are; only what `fetch` cannot report as a response becomes
//! `HttpFailed`.

use std::collections::BTreeMap;

use js_sys::{Promise, Reflect, Uint8Array};
use tessera_engine::driver::DriverInput as Input;
use tessera_engine::{HttpRequest, Method, TransportErrorKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Headers, ReadableStreamDefaultReader, Request, RequestCache, RequestCredentials, RequestInit,
    RequestRedirect, Response, ResponseType,
};

use super::glue::{describe, timeout_signal};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, present in windows and workers alike.
    #[wasm_bindgen(js_namespace = globalThis, js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
}

/// Sends the request and reads at most `max_response_bytes + 1` bytes of the body, so
/// the engine can tell an oversized body from one at the limit.
pub(crate) async fn perform(request: HttpRequest) -> Input {
    let id = request.id;
    match exchange(&request).await {
        Ok((status, headers, body)) => Input::HttpResponse {
            id,
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        Err((kind, detail)) => Input::HttpFailed { id, kind, detail },
    }
}

type Answer = (u16, BTreeMap<String, String>, Vec<u8>);
type Failed = (TransportErrorKind, String);

async fn exchange(request: &HttpRequest) -> Result<Answer, Failed> {
    let timeout_ms = request.timeout_ms;
    let failed = |error: JsValue| classify(&error, timeout_ms);
    let init = RequestInit::new();
    init.set_method(match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
    });
    // Token, device and revocation endpoints must not be followed elsewhere (a redirect
    // could leak the grant); the engine reports a redirect as such.
    init.set_redirect(RequestRedirect::Manual);
    init.set_cache(RequestCache::NoStore);
    // Tokens travel in headers and bodies, never in cookies.
    init.set_credentials(RequestCredentials::Omit);
    init.set_signal(Some(&timeout_signal(timeout_ms as f64)));
    let headers = Headers::new().map_err(failed)?;
    for (name, value) in &request.headers {
        headers.set(name, value).map_err(failed)?;
    }
    init.set_headers(&headers);
    if let Some(body) = &request.body {
        init.set_body(&JsValue::from_str(body));
    }
    let js_request = Request::new_with_str_and_init(&request.url, &init).map_err(failed)?;
    let response: Response = JsFuture::from(global_fetch(&js_request))
        .await
        .map_err(failed)?
        .unchecked_into();
    if response.type_() == ResponseType::Opaqueredirect {
        return Err((
            TransportErrorKind::Redirect,
            "the server answered with a redirect, which was not followed".into(),
        ));
    }
    let mut names = BTreeMap::new();
    if let Ok(Some(entries)) = js_sys::try_iter(&response.headers()) {
        for entry in entries.flatten() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                // fetch already joins repeated headers with ", ".
                names.insert(name.to_ascii_lowercase(), value);
            }
        }
    }
    let body = read_capped(&response, request.max_response_bytes.saturating_add(1))
        .await
        .map_err(failed)?;
    Ok((response.status(), names, body))
}

/// Reads the body stream until `limit` bytes, then cancels it.
async fn read_capped(response: &Response, limit: usize) -> Result<Vec<u8>, JsValue> {
    let Some(stream) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if Reflect::get(&chunk, &"done".into())?.is_truthy() {
            break;
        }
        let bytes: Uint8Array = Reflect::get(&chunk, &"value".into())?.unchecked_into();
        let room = limit.saturating_sub(body.len());
        let take = (bytes.length() as usize).min(room);
        body.extend_from_slice(&bytes.subarray(0, take as u32).to_vec());
        if body.len() >= limit {
            // The rest is not wanted; a failed cancel changes nothing for the answer.
            let _ = reader.cancel();
            break;
        }
    }
    Ok(body)
}

fn classify(error: &JsValue, timeout_ms: u64) -> Failed {
    let name = error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.name()))
        .or_else(|| {
            Reflect::get(error, &"name".into())
                .ok()
                .and_then(|n| n.as_string())
        })
        .unwrap_or_default();
    match name.as_str() {
        "TimeoutError" | "AbortError" => (
            TransportErrorKind::Timeout,
            format!("no answer within {timeout_ms} ms"),
        ),
        // What fetch reports for refused connections, DNS, TLS and CORS alike.
        "TypeError" => (
            TransportErrorKind::Connect,
            format!(
                "the request failed ({}): the server is unreachable, or the browser blocked \
                 it (CORS, or an extension without host permission for this origin)",
                describe(error)
            ),
        ),
        _ => (TransportErrorKind::Other, describe(error)),
    }
}
