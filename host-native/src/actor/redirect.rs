//! The loopback server that receives the browser's redirect: each request on the
//! redirect path becomes a `callback` call, answered with the result page.

use ractor::ActorRef;
use tessera_engine::Error;
use tessera_engine::driver::Command;

use super::{SessionMsg, SessionState, Waiting};
use crate::loopback::LoopbackServer;

impl SessionState {
    pub(super) async fn start_loopback(
        &mut self,
        myself: &ActorRef<SessionMsg>,
    ) -> Result<String, Error> {
        self.stop_loopback();
        let options = &self.args.loopback;
        let mut server = LoopbackServer::bind(options.port, &options.path)
            .await
            .map_err(|e| Error::Config {
                problem: format!(
                    "cannot listen on 127.0.0.1:{} for the redirect: {e}",
                    options.port
                ),
            })?;
        let redirect_uri = server.redirect_uri();
        let actor = myself.clone();
        self.loopback = Some(tokio::spawn(async move {
            while let Some(page) = server.next_callback().await {
                let url = page.url.clone();
                // The loopback server may receive other requests: one refused is not the end.
                let command = Command::Callback { url, last: false };
                if actor
                    .cast(SessionMsg::Call(command, Waiting::Page(page)))
                    .is_err()
                {
                    break;
                }
            }
        }));
        Ok(redirect_uri)
    }

    pub(super) fn stop_loopback(&mut self) {
        if let Some(task) = self.loopback.take() {
            task.abort();
        }
    }
}
