//! The RFC 8252 §7.3 loopback redirect receiver: a tiny HTTP server on `127.0.0.1` that
//! hands each browser redirect to the caller and answers the browser with a page saying
//! how the sign-in went.
//!
//! Why it looks the way it does:
//! - It binds the IPv4 loopback address only (RFC 8252 §8.3): `localhost` may resolve to
//!   `::1` or be captured by a firewall, and any wider bind would expose the callback to
//!   the network. The redirect URI uses the literal `127.0.0.1` for the same reason.
//! - HTTP is spoken by hyper, never parsed by hand. The URL handed to the engine is
//!   rebuilt from the request target alone; the `Host` header is attacker-controlled (DNS
//!   rebinding) and plays no part.
//! - The browser's request is held open until the caller says how the callback was
//!   judged ([`PendingCallback::respond`]), at most [`RESPONSE_WAIT`], so the tab can say
//!   "signed in" or "failed" instead of a premature "done".
//! - Anything else (favicon, `/`, other methods, huge targets) gets a small error page
//!   and never reaches the caller, so stray requests cannot end a login.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, timeout, timeout_at};

use page::{Page, render};

mod page;

/// How long the browser's request waits for [`PendingCallback::respond`] before it gets a
/// neutral "still waiting" page. Long enough for a code exchange, short enough that a tab
/// never spins forever.
pub const RESPONSE_WAIT: Duration = Duration::from_secs(10);
/// Longest accepted request target (path and query), as the engine's own callback limit.
const MAX_TARGET_LEN: usize = 16 * 1024;
/// hyper's read buffer: room for a maximal target plus ordinary browser headers, so
/// over-long targets reach our handler and get a clean 414.
const MAX_BUF_SIZE: usize = 64 * 1024;
/// A client that opens a connection and sends nothing is dropped after this long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at once; more wait in the kernel backlog. Browsers use a handful.
const MAX_CONNECTIONS: usize = 32;
/// Callbacks received but not yet taken by [`LoopbackServer::next_callback`].
const QUEUE_LEN: usize = 16;
/// After shutdown, how long an in-flight response may take to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A loopback HTTP server waiting for OAuth redirects on one path.
///
/// Dropping it (or [`shutdown`](Self::shutdown)) stops accepting, closes idle
/// connections, lets in-flight responses finish for up to two seconds, and answers
/// callbacks not yet taken with a "no longer waiting" page.
pub struct LoopbackServer {
    addr: SocketAddr,
    path: String,
    callbacks: mpsc::Receiver<PendingCallback>,
    /// Never sent on: dropping it is the shutdown signal every task watches.
    _shutdown: watch::Sender<()>,
}

impl LoopbackServer {
    /// Binds `127.0.0.1:port` (0 = an ephemeral port chosen by the OS) and starts serving
    /// on the current tokio runtime. `path` is the redirect path, e.g. `/callback`; it must
    /// start with `/` and contain only visible ASCII without `?` or `#`.
    ///
    /// Fails with the OS error when the port is taken, or `InvalidInput` for a bad path.
    pub async fn bind(port: u16, path: &str) -> io::Result<Self> {
        Self::bind_with(port, path, RESPONSE_WAIT).await
    }

    async fn bind_with(port: u16, path: &str, wait: Duration) -> io::Result<Self> {
        let valid = path.starts_with('/')
            && path
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '?' && c != '#');
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the redirect path must start with '/' and hold only visible ASCII without '?' or '#'",
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let (sender, callbacks) = mpsc::channel(QUEUE_LEN);
        let (shutdown, watcher) = watch::channel(());
        let shared = Arc::new(Shared {
            port: addr.port(),
            path: path.to_owned(),
            sender,
            wait,
        });
        tokio::spawn(accept_loop(listener, shared, watcher));
        Ok(Self {
            addr,
            path: path.to_owned(),
            callbacks,
            _shutdown: shutdown,
        })
    }

    /// The redirect URI to register and send: `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), self.path)
    }

    /// The address actually bound (always `127.0.0.1`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next GET request to exactly the redirect path (any query), in arrival order.
    /// `None` only if the server's task has ended. Cancel-safe: a callback is never lost
    /// when this future is dropped, so it may sit in a `select!`.
    pub async fn next_callback(&mut self) -> Option<PendingCallback> {
        self.callbacks.recv().await
    }

    /// Stops the server; the same as dropping it. The port is released as soon as the
    /// server's task runs next, not necessarily before this returns.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl fmt::Debug for LoopbackServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackServer")
            .field("redirect_uri", &self.redirect_uri())
            .finish_non_exhaustive()
    }
}

/// Where the loopback server listens.
#[derive(Clone, Debug)]
pub struct LoopbackOptions {
    /// 0 for an ephemeral port.
    pub port: u16,
    pub path: String,
}

/// One redirect received by the server; the browser waits until [`respond`](Self::respond)
/// is called (at most [`RESPONSE_WAIT`]).
pub struct PendingCallback {
    /// `http://127.0.0.1:<port><path>?<query>` exactly as requested: give it to the engine
    /// as `Input::Callback`. It holds the authorization code: do not log it.
    pub url: String,
    responder: oneshot::Sender<CallbackPage>,
}

impl PendingCallback {
    /// Answers the browser with `page`. Dropping the callback instead answers a neutral
    /// "tessera is still waiting" page. Does nothing if the browser already gave up.
    pub fn respond(self, page: CallbackPage) {
        // An error only means the request is gone (timed out or closed): nothing to tell.
        let _ = self.responder.send(page);
    }
}

impl fmt::Debug for PendingCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query carries the authorization code; Debug output ends up in logs.
        let shown = match self.url.split_once('?') {
            Some((base, _)) => format!("{base}?<redacted>"),
            None => self.url.clone(),
        };
        f.debug_struct("PendingCallback")
            .field("url", &shown)
            .finish_non_exhaustive()
    }
}

/// What the browser tab shows for a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackPage {
    /// The login completed.
    Success,
    /// The login failed; `message` says why (it is HTML-escaped when shown).
    Failed { message: String },
    /// The request did not belong to the current login (e.g. a stale `state`); tessera
    /// keeps waiting for the real one.
    Ignored { message: String },
}

struct Shared {
    port: u16,
    path: String,
    sender: mpsc::Sender<PendingCallback>,
    wait: Duration,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(
                    stream,
                    shared.clone(),
                    stop.clone(),
                    permit,
                ));
            }
            Err(error) => {
                // Per-connection failures and fd exhaustion: back off briefly, keep serving.
                tracing::debug!(%error, "loopback accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!("loopback server stopped");
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request| handle(request, shared.clone()));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "loopback connection ended with an error");
            }
        }
        _ = stop.changed() => {
            // Finish the response in flight (the "signed in" page), then close.
            conn.as_mut().graceful_shutdown();
            let _ = timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("", |pq| pq.as_str());
    let page = if target.len() > MAX_TARGET_LEN {
        Page::TooLong
    } else if uri.path() != shared.path {
        Page::NotFound
    } else if request.method() != Method::GET {
        Page::MethodNotAllowed
    } else {
        tracing::debug!(path = %shared.path, "loopback callback received");
        let url = format!("http://127.0.0.1:{}{target}", shared.port);
        deliver(url, &shared).await
    };
    Ok(render(&page))
}

/// Queues the callback for [`LoopbackServer::next_callback`] and waits for its page.
async fn deliver(url: String, shared: &Shared) -> Page {
    let deadline = Instant::now() + shared.wait;
    let (responder, answer) = oneshot::channel();
    match timeout_at(
        deadline,
        shared.sender.send(PendingCallback { url, responder }),
    )
    .await
    {
        Err(_) => Page::Busy,
        Ok(Err(_)) => Page::Closed,
        Ok(Ok(())) => match timeout_at(deadline, answer).await {
            Ok(Ok(page)) => Page::Callback(page),
            // Dropped unanswered because the server shut down with it still queued.
            Ok(Err(_)) if shared.sender.is_closed() => Page::Closed,
            // Dropped unanswered, or still being worked on: stay neutral.
            Ok(Err(_)) | Err(_) => Page::Waiting,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn debug_hides_the_code_and_a_late_answer_is_neutral() {
        let mut server = LoopbackServer::bind_with(0, "/cb", Duration::from_millis(200))
            .await
            .expect("bind");
        let mut stream = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        let request = "GET /cb?code=secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("write");
        let pending = server.next_callback().await.expect("callback");
        assert!(!format!("{pending:?}").contains("secret"));
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("tessera is still waiting"), "{answer}");
        pending.respond(CallbackPage::Success); // too late: must be a harmless no-op
    }
}
