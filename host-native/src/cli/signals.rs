//! SIGTERM, SIGINT and SIGHUP: a command ends with 128 + the signal's number, but only
//! once no session is between sending a refresh and storing its answer (the provider may
//! have rotated the refresh token: dying there would log the user out). `exec` listens
//! before it starts, so a signal that arrives while its command starts is forwarded, not
//! lost.

/// Listeners for the termination signals, registered once: while they exist the signals'
/// default actions (ending the process at once) no longer apply.
pub struct Termination {
    #[cfg(unix)]
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Termination {
    /// Starts listening. Without handlers (an error from the OS) the default actions stay.
    pub fn listen() -> Termination {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(int), Ok(hup)) => Some([term, int, hup]),
                _ => None,
            };
            Termination { streams }
        }
        #[cfg(not(unix))]
        Termination {}
    }

    /// The number of the next termination signal received.
    #[cfg(unix)]
    pub async fn recv(&mut self) -> u8 {
        let Some([term, int, hup]) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => 15,
            _ = int.recv() => 2,
            _ = hup.recv() => 1,
        }
    }

    #[cfg(not(unix))]
    pub async fn recv(&mut self) -> u8 {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 2,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs `command` to its end, or until a termination signal: then `Err(signal)`, once
/// nothing is in flight that stopping could lose (at most 30 s; if that passes, the user is
/// told to check the session).
pub async fn unless_signalled<T>(
    command: impl std::future::Future<Output = T>,
    signals: &mut Termination,
) -> Result<T, u8> {
    let mut command = std::pin::pin!(command);
    let signal = tokio::select! {
        done = &mut command => return Ok(done),
        signal = signals.recv() => signal,
    };
    // The command keeps running (its session stores what the provider answered) until
    // nothing is in flight that a stop could lose; then the signal's exit.
    let safe = tokio::select! {
        _ = &mut command => true,
        safe = tessera::shutdown::safe_to_exit(std::time::Duration::from_secs(30)) => safe,
    };
    if !safe {
        super::output::error(
            "stopped while a refresh was being stored; check with `tessera status`",
        );
    }
    Err(signal)
}
