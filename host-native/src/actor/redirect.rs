//! The loopback server that receives the browser's redirect, and the page it answers.

use ractor::ActorRef;
use tessera_engine::{Error, Input};

use super::{SessionMsg, SessionState};
use crate::events::HostEvent;
use crate::loopback::{CallbackPage, LoopbackServer, PendingCallback};

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
                if actor.cast(SessionMsg::Callback { url, page }).is_err() {
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

    pub(super) fn callback(
        &mut self,
        myself: &ActorRef<SessionMsg>,
        url: String,
        page: PendingCallback,
    ) {
        match self.feed(myself, Input::Callback { url }) {
            Some(rejected) => {
                let message = rejected.to_string();
                let _ = self.args.events.send(HostEvent::CallbackIgnored {
                    reason: message.clone(),
                });
                page.respond(CallbackPage::Ignored { message });
            }
            // The page waits until the exchange tells whether the login worked.
            None if self.engine.state_name() == "exchanging_code" => {
                self.callback_page = Some(page)
            }
            None => page.respond(CallbackPage::Failed {
                message: "the login ended".into(),
            }),
        }
    }
}
