//! The host's side: callers' commands, the driver's actions performed and checked, time
//! passing; one step of the input at a time.

use super::provider::{body_param, is_refresh, query_param};
use super::*;

impl World {
    pub(super) fn call(&mut self, command: Command) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.input(DriverInput::Call { call, command });
    }

    pub(super) fn input(&mut self, input: DriverInput) {
        if self.trace {
            let detail = match &input {
                DriverInput::HttpResponse { status, body, .. } => format!(" {status} {body}"),
                DriverInput::Call {
                    command: Command::Callback { url, .. },
                    ..
                } => format!(" {url}"),
                DriverInput::Loaded {
                    session: Some(s),
                    version,
                }
                | DriverInput::LockAcquired {
                    session: Some(s),
                    version,
                } => {
                    format!(
                        " rt={:?} v={version:?}",
                        s.refresh_token.as_ref().map(|t| t.expose().to_owned())
                    )
                }
                _ => String::new(),
            };
            eprintln!("{} <- {input:?}{detail}", self.now - START);
        }
        let _ = self.driver.handle(UnixMillis(self.now), input);
        self.drain();
    }

    /// Performs every action the driver asks for, checking the invariants.
    pub(super) fn drain(&mut self) {
        while let Some(action) = self.driver.poll_action() {
            if self.trace {
                let detail = match &action {
                    Action::Save { session, .. } => format!(
                        " rt={:?}",
                        session
                            .refresh_token
                            .as_ref()
                            .map(|t| t.expose().to_owned())
                    ),
                    Action::Send(r) => format!(" {:?}", r.body),
                    _ => String::new(),
                };
                eprintln!("{} -> {action:?}{detail}", self.now - START);
            }
            self.check_text(&format!("{action:?}"), "an action's Debug text");
            match &action {
                Action::Reply {
                    reply: Reply::Failed { error },
                    ..
                }
                | Action::Notify(Notice::RefreshFailed { error, .. }) => {
                    self.check_text(&error.to_string(), "an error message")
                }
                Action::Reply {
                    reply: Reply::Refused { rejected },
                    ..
                } => self.check_text(&rejected.to_string(), "a rejection"),
                Action::Notify(Notice::CallbackIgnored { reason }) => {
                    self.check_text(reason, "a notice")
                }
                _ => {}
            }
            let write_pending = self
                .asks
                .iter()
                .any(|a| matches!(a, StoreAsk::Save { .. } | StoreAsk::Delete));
            if write_pending {
                assert!(
                    !matches!(action, Action::Load | Action::Save { .. } | Action::Delete),
                    "{action:?} asked while a write is unanswered: {:?}",
                    self.asks
                );
            }
            match action {
                Action::Send(request) => {
                    if is_refresh(&request) {
                        assert!(
                            !self.in_flight.iter().any(is_refresh),
                            "two refresh requests in flight: {:?} and {request:?}",
                            self.in_flight
                        );
                    }
                    if let Some(verifier) = request
                        .body
                        .as_deref()
                        .and_then(|b| body_param(b, "code_verifier"))
                    {
                        self.secrets.push(verifier);
                    }
                    self.in_flight.push(request);
                }
                Action::OpenBrowser { url } | Action::PromptForCode { url } => {
                    self.state = query_param(&url, "state");
                    self.nonce = query_param(&url, "nonce");
                }
                Action::Load => self.asks.push(StoreAsk::Load),
                Action::Save { session, replaces } => {
                    self.asks.push(StoreAsk::Save { session, replaces })
                }
                Action::Delete => self.asks.push(StoreAsk::Delete),
                Action::AcquireLock { lease_ms, .. } => self.asks.push(StoreAsk::Lock(lease_ms)),
                Action::ReleaseLock => self.lock_until = None,
                Action::ArmTimer { at } => self.timer = Some(at.0),
                Action::CancelTimer => self.timer = None,
                Action::Reply { call, reply } => {
                    let count = self.answered.entry(call.0).or_default();
                    *count += 1;
                    assert!(*count == 1, "call {} answered twice: {reply:?}", call.0);
                    match reply {
                        Reply::Token { access_token, .. } => {
                            self.last_access_token = Some(access_token.expose().to_owned())
                        }
                        Reply::HandedOff { url, login } => {
                            self.state = query_param(&url, "state");
                            self.nonce = query_param(&url, "nonce");
                            self.handed_off = Some(login);
                        }
                        _ => {}
                    }
                }
                Action::ShowUserCode(_) | Action::CloseRedirect | Action::Notify(_) => {}
                Action::VerifySignature(check) => {
                    panic!("the engine answers its own signature checks here: {check:?}")
                }
            }
        }
    }

    pub(super) fn command(&mut self, bytes: &mut Bytes) {
        let command = match bytes.u8() % 16 {
            0..=4 => Command::GetToken {
                min_ttl_secs: bytes.pick(&[0, 0, 60, 3600, 999_999, u64::MAX]),
            },
            5 => Command::TokenRejected {
                access_token: Secret::new(match &self.last_access_token {
                    Some(t) if bytes.bool() => t.clone(),
                    _ => "not-a-token".into(),
                }),
            },
            6 => Command::GetDerivedToken {
                name: bytes.pick(&["ws", "ws", "nope"]).into(),
                min_ttl_secs: bytes.pick(&[0, 60, 999_999]),
            },
            7 | 8 => Command::Login {
                method: bytes.pick(&[
                    LoginMethod::Browser,
                    LoginMethod::Paste,
                    LoginMethod::Device,
                    LoginMethod::Handoff,
                ]),
                redirect_uri: bytes.bool().then(|| "http://127.0.0.1:9/callback".into()),
            },
            9 | 10 => Command::Callback {
                url: self.callback_url(bytes),
                last: bytes.bool(),
            },
            11 => {
                let text = match bytes.u8() % 4 {
                    0 => bytes.text(256),
                    1 => {
                        let code = self.secret("CO");
                        format!("{code}#{}", self.state.clone().unwrap_or_default())
                    }
                    _ => self.callback_url(bytes),
                };
                Command::PastedCode { text }
            }
            12 => match self.handed_off.take() {
                Some(login) => Command::ResumeLogin {
                    login,
                    url: self.callback_url(bytes),
                },
                None => Command::Status,
            },
            13 => Command::Logout {
                force: bytes.bool(),
            },
            14 => Command::Cancel,
            _ => Command::Status,
        };
        self.call(command);
    }

    /// Whatever a host may get wrong: an answer nothing asked for.
    pub(super) fn unasked(&mut self, bytes: &mut Bytes) {
        let input = match bytes.u8() % 8 {
            0 => DriverInput::HttpResponse {
                id: RequestId(bytes.u16() as u64),
                status: 200,
                headers: BTreeMap::new(),
                body: "{}".into(),
            },
            1 => DriverInput::Saved {
                version: Version(99),
            },
            2 => DriverInput::Deleted,
            3 => DriverInput::LockBusy,
            4 => DriverInput::CallDropped {
                call: CallId(bytes.below(self.next_call as usize + 1) as u64),
            },
            5 => DriverInput::LaunchFailed {
                detail: "no browser".into(),
            },
            6 => DriverInput::Loaded {
                session: None,
                version: None,
            },
            _ => DriverInput::LockAcquired {
                session: None,
                version: None,
            },
        };
        // Only inputs nothing asked for: an answer owed goes through the model.
        let owed = match &input {
            DriverInput::Saved { .. } | DriverInput::Deleted | DriverInput::Loaded { .. } => {
                !self.asks.is_empty()
            }
            DriverInput::LockBusy | DriverInput::LockAcquired { .. } => {
                self.asks.iter().any(|a| matches!(a, StoreAsk::Lock(_)))
            }
            DriverInput::HttpResponse { id, .. } => self.in_flight.iter().any(|r| r.id == *id),
            _ => false,
        };
        if !owed {
            self.input(input);
        }
    }

    pub(super) fn step(&mut self, bytes: &mut Bytes) {
        match bytes.u8() % 16 {
            0..=3 => self.command(bytes),
            4..=7 => self.answer_http(bytes),
            8 | 9 => self.answer_store(bytes),
            10 => {
                // Time passes: a little, to the timer, or a lot.
                let delta = match bytes.u8() % 4 {
                    0 => bytes.u16() as u64,
                    1 => self.timer.map_or(0, |t| t.saturating_sub(self.now)),
                    2 => bytes.u32() as u64,
                    _ => 1000,
                };
                self.now = self.now.saturating_add(delta);
            }
            11 | 12 => {
                if self.timer.is_some_and(|t| t <= self.now) || bytes.u8().is_multiple_of(8) {
                    self.timer = None;
                    self.input(DriverInput::TimerFired);
                }
            }
            13 => self.sibling(bytes),
            14 => self.unasked(bytes),
            _ => {
                if bytes.u8().is_multiple_of(16) && !self.stopped {
                    self.stopped = true;
                    self.input(DriverInput::Stop);
                }
            }
        }
    }
}
