//! Read-only facts about a state: its name, its timer, whether it takes commands now.

use super::State;
use crate::core::Core;
use crate::time::UnixMillis;

impl State {
    /// The state's name as transcripts and `status` show it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::LoadingSession {} => "loading_session",
            State::LoggedOut {} => "logged_out",
            State::Idle {} => "idle",
            State::FindingTokenEndpoint { .. } => "finding_token_endpoint",
            State::LockingSession {} => "locking_session",
            State::Refreshing { .. } => "refreshing",
            State::ConfirmingGrantLoss { .. } => "confirming_grant_loss",
            State::Discovering { .. } => "discovering",
            State::AwaitingCallback { .. } => "awaiting_callback",
            State::ExchangingCode { .. } => "exchanging_code",
            State::FetchingUserinfo { .. } => "fetching_userinfo",
            State::CheckingSignatureForLogin { .. } => "checking_signature_for_login",
            State::CheckingSignatureForRefresh { .. } => "checking_signature_for_refresh",
            State::FetchingKeysForLogin { .. } => "fetching_keys_for_login",
            State::FetchingKeysForRefresh { .. } => "fetching_keys_for_refresh",
            State::RequestingDeviceCode { .. } => "requesting_device_code",
            State::WaitingToPoll { .. } => "waiting_to_poll",
            State::PollingDevice { .. } => "polling_device",
            State::LockingForLogout { .. } => "locking_for_logout",
            State::Revoking { .. } => "revoking",
        }
    }

    /// When this state next needs a `Timeout`.
    pub(crate) fn wake_at(&self, core: &Core) -> Option<UnixMillis> {
        match self {
            State::Idle {} => core.refresh_timer(),
            State::AwaitingCallback { deadline, .. } => Some(*deadline),
            State::WaitingToPoll { grant, poll_at } => Some((*poll_at).min(grant.deadline)),
            State::PollingDevice { grant, .. } => Some(grant.deadline),
            _ => None,
        }
    }

    /// Whether a login flow is running (a `logging_in` substate).
    pub(crate) fn is_logging_in(&self) -> bool {
        matches!(
            self,
            State::Discovering { .. }
                | State::AwaitingCallback { .. }
                | State::ExchangingCode { .. }
                | State::FetchingUserinfo { .. }
                | State::CheckingSignatureForLogin { .. }
                | State::FetchingKeysForLogin { .. }
                | State::RequestingDeviceCode { .. }
                | State::WaitingToPoll { .. }
                | State::PollingDevice { .. }
        )
    }

    /// Whether commands deferred earlier can be handled now.
    pub(crate) fn takes_deferred_commands(&self) -> bool {
        !matches!(
            self,
            State::LoadingSession {}
                | State::FindingTokenEndpoint { .. }
                | State::LockingSession {}
                | State::Refreshing { .. }
                | State::CheckingSignatureForRefresh { .. }
                | State::FetchingKeysForRefresh { .. }
                | State::ConfirmingGrantLoss { .. }
                | State::LockingForLogout { .. }
                | State::Revoking { .. }
        )
    }
}
