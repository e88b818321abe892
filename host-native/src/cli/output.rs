//! Where the CLI writes: data on stdout, everything for the human on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// A line of data (stdout).
pub fn line(text: &str) {
    println!("{text}");
}

/// A message for the user (stderr).
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// An error for the user (stderr), prefixed so it stands out in scripts' logs.
pub fn error(text: &str) {
    eprintln!("tessera: {text}");
}

/// "in 59 min", "2 h 5 min ago".
pub fn relative(secs: i64) -> String {
    let (abs, past) = (secs.unsigned_abs(), secs < 0);
    let text = match abs {
        0..60 => format!("{abs} s"),
        60..3600 => format!("{} min", abs / 60),
        3600..86400 => format!("{} h {} min", abs / 3600, (abs % 3600) / 60),
        _ => format!("{} days", abs / 86400),
    };
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// RFC 3339 UTC for Unix milliseconds.
pub fn timestamp(millis: u64) -> String {
    // RFC 3339 has four-digit years: later times (a stored or given expiry can say
    // anything) are shown as what they are rather than panicking the formatter.
    const LAST_RFC3339_MILLIS: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if millis > LAST_RFC3339_MILLIS {
        return "after 9999-12-31T23:59:59Z".to_owned();
    }
    match std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(millis)) {
        Some(at) => humantime::format_rfc3339_seconds(at).to_string(),
        None => "after 9999-12-31T23:59:59Z".to_owned(),
    }
}

/// Text from the provider (codes, URIs, names) made safe for a terminal: control
/// characters (escape sequences, bells, carriage returns, C1 controls) and bidirectional
/// overrides become `?`, so a hostile server cannot rewrite the screen or the prompt.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi { '?' } else { c }
        })
        .collect()
}

/// Names from the provider (groups, teams) on one line: at most `max` of them, each
/// [`printable`], then how many more there are.
pub fn list(names: &[String], max: usize) -> String {
    let shown: Vec<String> = names.iter().take(max).map(|n| printable(n)).collect();
    let mut text = shown.join(", ");
    if names.len() > max {
        text.push_str(&format!(" (and {} more)", names.len() - max));
    }
    text
}

/// The end-session URL as shown to the user: without `id_token_hint`, which carries the
/// ID token (personal data, and a credential some providers accept) into terminals,
/// scrollback and logs. The provider may then ask which account to sign out.
pub fn shown_end_session_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return String::new();
    };
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(name, _)| name != "id_token_hint")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    parsed.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_cannot_drive_the_terminal() {
        assert_eq!(printable("WDJB-MJHT"), "WDJB-MJHT");
        assert_eq!(
            printable("\u{1b}[2J\u{1b}]8;;evil\u{7}ok\r\u{202e}x"),
            "?[2J?]8;;evil?ok??x"
        );
        assert_eq!(printable("Zoë 李"), "Zoë 李");
    }

    #[test]
    fn lists_are_bounded_and_printable() {
        let names: Vec<String> = ["eng", "o\u{1b}ps", "x", "y"].map(String::from).into();
        assert_eq!(list(&names, 10), "eng, o?ps, x, y");
        assert_eq!(list(&names, 2), "eng, o?ps (and 2 more)");
        assert_eq!(list(&[], 2), "");
    }

    #[test]
    fn the_end_session_url_is_shown_without_the_id_token() {
        let url = "https://op.example/logout?client_id=cli&id_token_hint=eyJ.secret.sig&post_logout_redirect_uri=https%3A%2F%2Fapp";
        let shown = shown_end_session_url(url);
        assert!(
            !shown.contains("eyJ") && !shown.contains("id_token_hint"),
            "{shown}"
        );
        assert!(shown.contains("client_id=cli") && shown.contains("post_logout_redirect_uri="));
        assert_eq!(shown_end_session_url("not a url"), "");
    }

    #[test]
    fn timestamps_past_year_9999_do_not_panic() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(253_402_300_799_000), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp(253_402_300_800_000), "after 9999-12-31T23:59:59Z");
        assert_eq!(timestamp(u64::MAX), "after 9999-12-31T23:59:59Z");
    }
}
