//! Device authorization (RFC 8628 §3.1–3.3).

use crate::config::{ClientAuthMethod, Config};
use crate::effect::UserCode;
use crate::error::Error;
use crate::protocol::response::Response;
use crate::protocol::token::{Encoded, client_form};
use crate::secret::Secret;
use crate::time::UnixMillis;

/// Longest interval accepted from the provider, so a typo cannot stall a login for hours.
const MAX_INTERVAL_SECS: u64 = 600;
/// Device codes live at most this long on our side whatever the provider says.
const MAX_DEVICE_LIFETIME_SECS: u64 = 24 * 3600;
/// RFC 8628 §3.5: `slow_down` adds five seconds to every later poll.
pub(crate) const SLOW_DOWN_STEP_SECS: u64 = 5;

/// The device authorization request.
pub(crate) fn device_authorization(config: &Config, auth: ClientAuthMethod) -> Encoded {
    let scope = config.scopes.join(" ");
    let mut params = Vec::new();
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    let extra: Vec<(&str, &str)> = config
        .authorization_params
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "audience" | "resource"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    params.extend(extra);
    client_form(config, auth, params)
}

/// A granted device code and its polling schedule.
#[derive(Clone, Debug)]
pub(crate) struct DeviceGrant {
    pub device_code: Secret,
    pub interval_secs: u64,
    /// Client-side deadline: the code's `expires_in` after it was issued.
    pub deadline: UnixMillis,
}

/// Reads the device authorization response (accepting the common `verification_url`).
pub(crate) fn read_device_authorization(
    response: &Response<'_>,
    config: &Config,
    now: UnixMillis,
) -> Result<(DeviceGrant, UserCode), Error> {
    let fields = response.oauth_fields(config.max_response_bytes)?;
    let device_code = response.required_str(&fields, "device_code")?;
    let user_code = response.required_str(&fields, "user_code")?;
    let verification_uri = match response.optional_str(&fields, "verification_uri")? {
        Some(uri) => uri,
        None => response
            .optional_str(&fields, "verification_url")?
            .ok_or_else(|| response.missing("verification_uri"))?,
    };
    let verification_uri_complete = response.optional_str(&fields, "verification_uri_complete")?;
    let lifetime = response
        .optional_secs(&fields, "expires_in")?
        .ok_or_else(|| response.missing("expires_in"))?
        .clamp(1, MAX_DEVICE_LIFETIME_SECS);
    let interval_secs = response
        .optional_secs(&fields, "interval")?
        .unwrap_or(config.device_poll_interval_secs)
        .clamp(1, MAX_INTERVAL_SECS);
    let deadline = now.plus_secs(lifetime);
    Ok((
        DeviceGrant {
            device_code: Secret::new(device_code),
            interval_secs,
            deadline,
        },
        UserCode {
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_at: deadline,
        },
    ))
}

/// The `interval` named in an error body, if any (capped like the first one).
pub(crate) fn interval_in(response: &Response<'_>, limit: usize) -> Option<u64> {
    let fields = response.fields(limit).ok()?;
    let secs = response.optional_secs(&fields, "interval").ok()??;
    Some(secs.clamp(1, MAX_INTERVAL_SECS))
}
