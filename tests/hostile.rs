//! The hostile-input tables of docs/reliability.md, checked (issue 13).
//!
//! Every row of the transcript table names a file under specs/ and what the provider (or
//! whoever reaches the loopback port) did wrong. For a row whose outcome is `error` or
//! `refused`, the transcript (replayed by `cargo test --test specs`) must show, at the
//! step with the hostile input, a typed error (an event or reply error that deserializes as
//! `tessera_engine::Error`, or a `Rejected`) whose message is not empty and shows none of
//! the transcript's tokens or codes, and no write of the session in that step (no
//! persist, save or delete): the stored session is unchanged. Rows must be distinct, and
//! there must be at least 60 such rows.
//!
//! Every row of the host table names a test function (`path::name`) that must exist.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn rows(doc: &str) -> Vec<Vec<String>> {
    doc.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn ticked(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.split('`').next()
}

/// Tokens and codes a transcript mentions: values of token members in bodies and sessions,
/// and `code=` in redirects.
fn secrets(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for key in ["access_token", "refresh_token", "id_token", "device_code"] {
        let mut rest = text;
        while let Some(at) = rest.find(key) {
            rest = &rest[at + key.len()..];
            let value: String = rest
                .trim_start_matches(['"', '\'', '\\', ' ', ':', '='])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-._~".contains(*c))
                .collect();
            if value.len() >= 4 && value.contains(|c: char| c == '-' || c.is_ascii_digit()) {
                found.insert(value);
            }
        }
    }
    let mut rest = text;
    while let Some(at) = rest.find("code=") {
        rest = &rest[at + 5..];
        let value: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-._~".contains(*c))
            .collect();
        if value.len() >= 4 {
            found.insert(value);
        }
    }
    found
}

/// The messages of the typed errors a step shows, and whether it writes the session.
fn step_errors(step: &Value) -> (Vec<String>, bool) {
    let mut messages = Vec::new();
    let mut writes = false;
    if let Some(rejected) = step.get("rejected") {
        let rejected: tessera_engine::Rejected =
            serde_json::from_value(rejected.clone()).expect("a typed rejection");
        messages.push(rejected.to_string());
    }
    let expects = step.get("expect").and_then(Value::as_array);
    for expect in expects.into_iter().flatten() {
        let kind = expect["type"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "persist_session" | "delete_session" | "save" | "delete"
        ) {
            writes = true;
        }
        let error = match kind {
            "event" => expect.get("error"),
            "notify" if expect["notice"] == "refresh_failed" => expect.get("error"),
            "reply" => match expect["reply"]["reply"].as_str() {
                Some("failed") => expect["reply"].get("error"),
                Some("refused") => {
                    let rejected: tessera_engine::Rejected =
                        serde_json::from_value(expect["reply"]["rejected"].clone())
                            .expect("a typed rejection");
                    messages.push(rejected.to_string());
                    None
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(error) = error {
            let error: tessera_engine::Error = serde_json::from_value(error.clone())
                .unwrap_or_else(|e| panic!("not a typed error: {error} ({e})"));
            messages.push(error.to_string());
        }
    }
    (messages, writes)
}

#[test]
fn every_hostile_transcript_in_the_reliability_doc_ends_typed_with_the_session_unchanged() {
    let doc = std::fs::read_to_string(root().join("docs/reliability.md")).expect("the doc");
    let mut seen = BTreeSet::new();
    let mut typed = 0;
    for row in rows(&doc) {
        let Some(file) = row.get(1).and_then(|c| ticked(c)) else {
            continue;
        };
        if !file.starts_with("specs/") {
            continue;
        }
        assert!(seen.insert(file.to_owned()), "{file} is listed twice");
        let outcome = row.get(3).map(String::as_str).unwrap_or_default();
        let text =
            std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        if !(outcome.starts_with("error") || outcome.starts_with("refused")) {
            continue;
        }
        let transcript: toml::Value = toml::from_str(&text).expect("toml");
        let transcript = serde_json::to_value(transcript).expect("json");
        let secrets = secrets(&text);
        let mut error_steps = 0;
        for (n, step) in transcript["step"]
            .as_array()
            .expect("steps")
            .iter()
            .enumerate()
        {
            // The user's own commands (a logout that cancels a login, say) are not the
            // hostile input, and may end or write the session.
            let input = &step["input"];
            let command = input["command"].as_str().or(input["type"].as_str());
            if matches!(command, Some("login" | "logout" | "cancel")) {
                continue;
            }
            let (messages, writes) = step_errors(step);
            if messages.is_empty() {
                continue;
            }
            error_steps += 1;
            assert!(
                !writes,
                "{file}: step {}: the session is written in the step that reports the error",
                n + 1
            );
            for message in &messages {
                assert!(
                    message.trim().len() > 10,
                    "{file}: message too short: {message:?}"
                );
                for secret in &secrets {
                    assert!(
                        !message.contains(secret.as_str()),
                        "{file}: `{secret}` shown in {message:?}"
                    );
                }
            }
        }
        assert!(
            error_steps > 0,
            "{file}: listed as `{outcome}` but no step shows a typed error or rejection"
        );
        typed += 1;
    }
    println!("{typed} hostile transcripts end with a typed error and the session unchanged");
    assert!(typed >= 60, "only {typed} hostile transcripts listed");
}

#[test]
fn every_host_level_hostile_test_in_the_reliability_doc_exists() {
    let doc = std::fs::read_to_string(root().join("docs/reliability.md")).expect("the doc");
    let mut checked = 0;
    for row in rows(&doc) {
        let Some(named) = row.get(1).and_then(|c| ticked(c)) else {
            continue;
        };
        let Some((file, name)) = named.split_once("::") else {
            continue;
        };
        let source =
            std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{named}: {e}"));
        assert!(
            source.contains(&format!("fn {name}(")),
            "{named}: no such test"
        );
        checked += 1;
    }
    assert!(checked > 0, "no host-level rows found");
}
