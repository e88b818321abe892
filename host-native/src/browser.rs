//! Opening the user's browser, and deciding up front whether that can work.
//!
//! A browser login that cannot open a browser hangs until it times out: over SSH the
//! browser would start on the remote machine (or not at all), and a Linux box without a
//! display has nothing to show it on. [`detect`] tells the host to offer the device or
//! paste-the-code flow instead, with a one-line reason for the user.

use std::io;
use std::process::{Command, Stdio};

/// Whether a browser can be opened for the user, judged from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserSupport {
    /// A browser can be opened (or `$BROWSER` says how to).
    Available,
    /// Linux/BSD with neither an X11 nor a Wayland display.
    NoDisplay,
    /// An SSH session: a browser would open on the remote machine, not in front of the user.
    RemoteSession,
    /// The user said so (`login --headless`).
    Declined,
}

impl BrowserSupport {
    /// One line for the user saying why no browser is opened; `None` when one is.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Available => None,
            Self::NoDisplay => Some("no display (DISPLAY and WAYLAND_DISPLAY are unset)"),
            Self::RemoteSession => Some("this is an SSH session"),
            Self::Declined => Some("--headless"),
        }
    }
}

/// Decides whether a browser can be opened, from environment variables looked up through
/// `env` (pass `|k| std::env::var(k).ok()`; tests pass a map). Empty values count as unset.
///
/// The order, first match wins:
/// 1. `$BROWSER` set ⇒ [`Available`](BrowserSupport::Available). The user said how to open
///    a URL (maybe a script that forwards it to their laptop), so we do not second-guess it.
/// 2. Linux/BSD with neither `DISPLAY` nor `WAYLAND_DISPLAY` ⇒
///    [`NoDisplay`](BrowserSupport::NoDisplay): `xdg-open` would fail or start a text
///    browser on our terminal.
/// 3. `SSH_CONNECTION` or `SSH_TTY` ⇒ [`RemoteSession`](BrowserSupport::RemoteSession),
///    even with a forwarded display: the browser would run on the remote host and the user
///    would sign in through a slow forwarded window, if at all.
/// 4. Otherwise [`Available`](BrowserSupport::Available): macOS and Windows always have an
///    opener, and a local Linux desktop has a display.
pub fn detect(env: impl Fn(&str) -> Option<String>) -> BrowserSupport {
    let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
    if set("BROWSER") {
        return BrowserSupport::Available;
    }
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    )) && !set("DISPLAY")
        && !set("WAYLAND_DISPLAY")
    {
        return BrowserSupport::NoDisplay;
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return BrowserSupport::RemoteSession;
    }
    BrowserSupport::Available
}

/// Opens `url` in the user's browser and returns once the opener has started; it never
/// waits for the browser to exit.
///
/// With `$BROWSER` (looked up through `env`), it is the list of commands to try, separated
/// by `:` (`;` on Windows), as in Python's `webbrowser` and xdg-utils. Each command is split
/// on whitespace (no shell is involved, so the URL cannot inject anything); `%s` in an
/// argument is replaced by the URL, `%c` by `:`, `%%` by `%`; without `%s` the URL is the
/// last argument. The first command that starts wins; its stdio is null and, on Unix, it
/// runs in its own process group so Ctrl-C in the terminal does not kill the browser.
/// If none starts, the last error is returned: the user chose `$BROWSER`, so we report
/// it broken rather than open some other browser.
///
/// Without `$BROWSER`, the `webbrowser` crate picks the platform opener.
pub fn open(url: &str, env: impl Fn(&str) -> Option<String>) -> io::Result<()> {
    open_with(url, env, std::env::vars_os())
}

/// Variables a browser never gets: credentials tessera reads from its environment.
const WITHHELD: [&str; 5] = [
    "TESSERA_PASSPHRASE",
    "TESSERA_ACCESS_TOKEN",
    "TESSERA_REFRESH_TOKEN",
    "TESSERA_SERVE_TOKEN",
    "TESSERA_SERVE_KEY",
];

/// [`open`] with the environment a `$BROWSER` command is started with, minus [`WITHHELD`].
/// (The platform opener used without `$BROWSER` inherits the process's environment: the
/// `webbrowser` crate offers no way to change it.)
fn open_with(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> io::Result<()> {
    let Some(browser) = env("BROWSER").filter(|value| !value.is_empty()) else {
        return webbrowser::open(url);
    };
    let vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| !WITHHELD.iter().any(|w| name.as_os_str() == *w))
        .collect();
    let mut last_error = io::Error::new(
        io::ErrorKind::NotFound,
        "BROWSER is set but names no command",
    );
    for argv in commands(&browser, url) {
        let Some((program, args)) = argv.split_first() else {
            continue;
        };
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(vars.iter().cloned())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        match command.spawn() {
            Ok(mut child) => {
                // Reap the child when it exits so it does not linger as a zombie in a
                // long-running program; nobody waits for this thread.
                let reaper = std::thread::Builder::new().name("tessera-browser".into());
                let _ = reaper.spawn(move || child.wait());
                return Ok(());
            }
            Err(error) => {
                tracing::debug!(%error, %program, "a BROWSER command did not start");
                last_error = io::Error::new(
                    error.kind(),
                    format!("BROWSER command {program:?} did not start: {error}"),
                );
            }
        }
    }
    Err(last_error)
}

/// The command lines `$BROWSER` describes for `url`, in order; empty alternatives dropped.
fn commands(browser: &str, url: &str) -> Vec<Vec<String>> {
    let separator = if cfg!(windows) { ';' } else { ':' };
    browser
        .split(separator)
        .filter_map(|alternative| {
            let mut url_placed = false;
            let mut argv: Vec<String> = alternative
                .split_whitespace()
                .map(|arg| {
                    let (expanded, placed) = expand(arg, url);
                    url_placed |= placed;
                    expanded
                })
                .collect();
            if argv.is_empty() {
                return None;
            }
            if !url_placed {
                argv.push(url.to_owned());
            }
            Some(argv)
        })
        .collect()
}

/// Expands `%s`, `%c` and `%%` in one left-to-right pass, so text coming from the URL is
/// never scanned for codes. Unknown codes are kept as written. Returns whether `%s` occurred.
fn expand(arg: &str, url: &str) -> (String, bool) {
    let mut out = String::with_capacity(arg.len());
    let mut placed = false;
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => {
                out.push_str(url);
                placed = true;
            }
            Some('c') => out.push(':'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    (out, placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    #[cfg(unix)]
    use std::path::Path;
    #[cfg(unix)]
    use std::time::{Duration, Instant};

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const UNIX_DESKTOP: bool = cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ));

    #[test]
    fn browser_variable_wins() {
        let ssh_headless = [("BROWSER", "echo"), ("SSH_TTY", "/dev/pts/1")];
        assert_eq!(detect(env(&ssh_headless)), BrowserSupport::Available);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let vars = [
            ("BROWSER", ""),
            ("DISPLAY", ":0"),
            ("SSH_TTY", "/dev/pts/1"),
        ];
        assert_eq!(detect(env(&vars)), BrowserSupport::RemoteSession);
        let expected = if UNIX_DESKTOP {
            BrowserSupport::NoDisplay
        } else {
            BrowserSupport::Available
        };
        assert_eq!(detect(env(&[("DISPLAY", "")])), expected);
    }

    #[test]
    fn no_display_comes_before_ssh() {
        let vars = [("SSH_CONNECTION", "10.0.0.1 5555 10.0.0.2 22")];
        let expected = if UNIX_DESKTOP {
            BrowserSupport::NoDisplay
        } else {
            BrowserSupport::RemoteSession
        };
        assert_eq!(detect(env(&vars)), expected);
        assert!(expected.reason().is_some());
    }

    #[test]
    fn ssh_with_a_forwarded_display_is_remote() {
        for display in ["DISPLAY", "WAYLAND_DISPLAY"] {
            let vars = [(display, "localhost:10.0"), ("SSH_TTY", "/dev/pts/3")];
            assert_eq!(detect(env(&vars)), BrowserSupport::RemoteSession);
        }
    }

    #[test]
    fn local_desktop_is_available() {
        assert_eq!(
            detect(env(&[("WAYLAND_DISPLAY", "wayland-0")])),
            BrowserSupport::Available
        );
        assert_eq!(BrowserSupport::Available.reason(), None);
        let expected = if UNIX_DESKTOP {
            BrowserSupport::NoDisplay
        } else {
            BrowserSupport::Available
        };
        assert_eq!(detect(env(&[])), expected);
    }

    #[test]
    fn commands_split_alternatives_and_place_the_url() {
        let url = "http://x/?a=%s&b=1";
        assert_eq!(
            commands("firefox --new-tab:: chromium --app=%s -x :%%s%c%q", url),
            vec![
                vec!["firefox".to_owned(), "--new-tab".to_owned(), url.to_owned()],
                vec![
                    "chromium".to_owned(),
                    format!("--app={url}"),
                    "-x".to_owned()
                ],
                vec!["%s:%q".to_owned(), url.to_owned()],
            ]
        );
        assert!(commands(" : ", url).is_empty());
    }

    /// Writes a script that records its arguments, one per line, into `out` (atomically,
    /// so a reader never sees half of it). It is run through `sh` rather than executed
    /// directly: exec'ing a freshly written file races with other tests' forks (ETXTBSY).
    #[cfg(unix)]
    fn recorder(dir: &Path) -> String {
        let script = dir.join("record.sh");
        let out = dir.join("args");
        let body = format!(
            "printf '%s\\n' \"$@\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            out.display()
        );
        std::fs::write(&script, body).expect("write script");
        format!("sh {}", script.display())
    }

    #[cfg(unix)]
    fn recorded(dir: &Path) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(dir.join("args")) {
                return text.lines().map(str::to_owned).collect();
            }
            assert!(Instant::now() < deadline, "the browser command never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[cfg(unix)]
    #[test]
    fn open_passes_the_url_as_last_argument() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = "http://127.0.0.1:8080/authorize?state=a b&x='$(id)'";
        let browser = format!("{} --new-window", recorder(dir.path()));
        open(url, env(&[("BROWSER", &browser)])).expect("open");
        assert_eq!(recorded(dir.path()), ["--new-window", url]);
    }

    #[cfg(unix)]
    #[test]
    fn the_browser_never_gets_tessera_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("env.sh");
        let out = dir.path().join("args");
        let body = format!("env > '{0}.tmp' && mv '{0}.tmp' '{0}'\n", out.display());
        std::fs::write(&script, body).expect("write script");
        let browser = format!("sh {}", script.display());
        let vars = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("DISPLAY", ":0".to_owned()),
            ("TESSERA_PASSPHRASE", "hunter2".to_owned()),
            ("TESSERA_REFRESH_TOKEN", "rt-secret".to_owned()),
        ]
        .map(|(k, v)| (k.into(), v.into()));
        open_with("https://idp.example/c", env(&[("BROWSER", &browser)]), vars).expect("open");
        let seen = recorded(dir.path()).join("\n");
        assert!(seen.contains("DISPLAY=:0"), "{seen}");
        assert!(
            !seen.contains("hunter2") && !seen.contains("rt-secret"),
            "{seen}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn open_substitutes_percent_s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let browser = format!("{} --url=%s --after", recorder(dir.path()));
        open("https://idp.example/a", env(&[("BROWSER", &browser)])).expect("open");
        assert_eq!(
            recorded(dir.path()),
            ["--url=https://idp.example/a", "--after"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn open_falls_through_a_missing_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let browser = format!("/nonexistent/tessera-browser %s:{}", recorder(dir.path()));
        open("https://idp.example/b", env(&[("BROWSER", &browser)])).expect("open");
        assert_eq!(recorded(dir.path()), ["https://idp.example/b"]);
    }

    #[test]
    fn open_fails_when_no_alternative_starts() {
        let browser = "/nonexistent/one:/nonexistent/two --x";
        let error = open("https://idp.example/", env(&[("BROWSER", browser)]))
            .expect_err("nothing can start");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("/nonexistent/two"), "{error}");
    }
}
