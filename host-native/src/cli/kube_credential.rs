//! `tessera kube-credential`: kubectl's exec credential plugin. It prints an
//! ExecCredential whose status holds the access token and its `expirationTimestamp`
//! (RFC 3339), until which kubectl reuses it before running the plugin again. The
//! apiVersion is the one kubectl asks for in `KUBERNETES_EXEC_INFO` (`v1` or `v1beta1`,
//! whose status is the same), `v1` when it asks for none.

use serde_json::{Value, json};

use super::args::{Cli, KubeCredentialArgs};
use super::session::fail;
use super::{Exit, fresh, output};

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

pub async fn run(cli: &Cli, args: &KubeCredentialArgs) -> Exit {
    let api_version = match api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref()) {
        Ok(version) => version,
        Err(problem) => return fail(Exit::Usage, &problem),
    };
    let fresh = match fresh::token(cli, args.min_ttl).await {
        Ok(fresh) => fresh,
        Err(exit) => return exit,
    };
    let credential = exec_credential(
        api_version,
        fresh.token.access_token.expose(),
        fresh.token.expires_at.0,
    );
    output::line(&credential.to_string());
    Exit::Ok
}

/// The apiVersion kubectl asks for in `KUBERNETES_EXEC_INFO` (itself an ExecCredential).
pub fn api_version(exec_info: Option<&str>) -> Result<&'static str, String> {
    let Some(text) = exec_info.filter(|t| !t.trim().is_empty()) else {
        return Ok(V1);
    };
    let info: Value = serde_json::from_str(text)
        .map_err(|e| format!("KUBERNETES_EXEC_INFO is not JSON ({e})"))?;
    match info.get("apiVersion").and_then(Value::as_str) {
        None | Some(V1) => Ok(V1),
        Some(V1BETA1) => Ok(V1BETA1),
        Some(other) => Err(format!(
            "kubectl asks for an ExecCredential of {:?}; tessera speaks {V1} and {V1BETA1}: \
             set `apiVersion: {V1}` in the kubeconfig's exec section",
            other.chars().take(80).collect::<String>()
        )),
    }
}

/// The ExecCredential for `token`, expiring at `expires_at` (Unix milliseconds).
pub fn exec_credential(api_version: &str, token: &str, expires_at: u64) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {
            "token": token,
            "expirationTimestamp": output::timestamp(expires_at),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_has_the_fields_and_types_client_go_reads() {
        let credential = exec_credential(V1, "tok", 1_900_000_000_999);
        assert_eq!(credential["apiVersion"], V1);
        assert_eq!(credential["kind"], "ExecCredential");
        assert_eq!(credential["status"]["token"], "tok");
        assert_eq!(
            credential["status"]["expirationTimestamp"],
            "2030-03-17T17:46:40Z"
        );
        assert_eq!(credential.as_object().unwrap().len(), 3);
    }

    #[test]
    fn the_api_version_is_the_one_kubectl_asks_for() {
        assert_eq!(api_version(None), Ok(V1));
        assert_eq!(api_version(Some("")), Ok(V1));
        let asked = |v: &str| {
            format!(
                r#"{{"kind":"ExecCredential","apiVersion":"{v}","spec":{{"interactive":false}}}}"#
            )
        };
        assert_eq!(api_version(Some(&asked(V1))), Ok(V1));
        assert_eq!(api_version(Some(&asked(V1BETA1))), Ok(V1BETA1));
        assert!(api_version(Some(&asked("client.authentication.k8s.io/v1alpha1"))).is_err());
        assert!(
            api_version(Some("{not json"))
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
