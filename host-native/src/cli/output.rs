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
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis),
    )
    .to_string()
}
