//! `tessera kube-credential`: the ExecCredential checked field by field, and, when kubectl
//! is installed, used by kubectl against a local API stand-in that records the bearer.

use serde_json::Value;

use crate::support::*;

/// `2026-12-07T06:30:00Z`: RFC 3339 in UTC, to the second, as client-go parses it.
fn is_rfc3339_utc(text: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_credential_prints_an_exec_credential_kubectl_uses() {
    let provider = Provider::start(&[]);
    let tessera = Tessera::new(&provider);
    assert_ok(&tessera.login(&["--browser"]), "login");

    let output = tessera.run(&["kube-credential"]);
    assert_ok(&output, "kube-credential");
    let credential: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let object = credential.as_object().expect("an object");
    assert_eq!(object.len(), 3, "apiVersion, kind, status: {credential}");
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    let status = credential["status"].as_object().expect("status object");
    assert_eq!(
        status.len(),
        2,
        "token and expirationTimestamp: {credential}"
    );
    let token = status["token"].as_str().expect("token is a string");
    assert!(provider.is_active(token).await);
    let expires = status["expirationTimestamp"].as_str().expect("a string");
    assert!(is_rfc3339_utc(expires), "{expires}");

    let v1beta1 = tessera
        .command(&["kube-credential"])
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
        )
        .output()
        .expect("runs");
    assert_ok(&v1beta1, "kube-credential for v1beta1");
    let answer: Value = serde_json::from_str(&stdout(&v1beta1)).expect("JSON");
    assert_eq!(answer["apiVersion"], "client.authentication.k8s.io/v1beta1");
    let unknown = tessera
        .command(&["kube-credential"])
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
        )
        .output()
        .expect("runs");
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stdout(&unknown).is_empty());

    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: its part of this test is skipped");
        return;
    }
    let Some(mut server) = ApiStandIn::start(tessera.dir.path()) else {
        eprintln!("openssl is not installed: the kubectl part of this test is skipped");
        return;
    };
    let kubeconfig = tessera.dir.path().join("kubeconfig");
    let bin = tessera_bin().display().to_string();
    std::fs::write(&kubeconfig, kubeconfig_text(&server.url, &bin)).expect("kubeconfig");
    let kubectl = |args: &[&str]| {
        let mut command = super::with_tessera_env(&tessera, "kubectl");
        command.args(args).env("KUBECONFIG", &kubeconfig);
        command.output().expect("kubectl runs")
    };
    let view = kubectl(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.users[0].user.exec.command}",
    ]);
    assert_ok(&view, "kubectl config view --raw");
    assert_eq!(stdout(&view), tessera_bin().display().to_string());
    let get = kubectl(&["get", "--raw", "/version"]);
    assert_ok(&get, "kubectl get --raw /version with tessera's credential");
    assert!(stdout(&get).contains("gitVersion"), "{}", stdout(&get));
    let authorization = server.next_authorization();
    let sent = authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    assert!(
        provider.is_active(sent).await,
        "kubectl sent tessera's live token"
    );
}

/// A kubeconfig whose user runs `tessera --store file kube-credential`.
fn kubeconfig_text(server: &str, tessera: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
         clusters:\n- name: test\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: tessera\n\
         users:\n- name: tessera\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n\
         \x20     command: {tessera}\n      args: [\"--store\", \"file\", \"kube-credential\"]\n\
         \x20     interactiveMode: Never\n"
    )
}

/// A stand-in for the API server on 127.0.0.1, over https (client-go runs exec plugins
/// only for TLS connections): node's https module with a throwaway self-signed
/// certificate from openssl. It answers `/version` and prints each request's
/// Authorization header on a line of its own. `None` when openssl is missing.
struct ApiStandIn {
    child: std::process::Child,
    url: String,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

const API_STAND_IN: &str = r#"
const https = require('https'), fs = require('fs');
const options = { key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) };
const server = https.createServer(options, (req, res) => {
  console.log('AUTH ' + (req.headers.authorization || ''));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.0' }));
});
server.listen(0, '127.0.0.1', () => console.log('READY https://127.0.0.1:' + server.address().port));
process.stdin.on('end', () => process.exit(0)).resume();
"#;

impl ApiStandIn {
    fn start(dir: &std::path::Path) -> Option<ApiStandIn> {
        use std::io::BufRead as _;
        let (key, cert) = (dir.join("api.key"), dir.join("api.crt"));
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        assert!(made.success(), "openssl made a certificate");
        let mut child = std::process::Command::new("node")
            .args(["-e", API_STAND_IN])
            .arg(&key)
            .arg(&cert)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = ready.strip_prefix("READY ").expect("READY line").to_owned();
        Some(ApiStandIn { child, url, lines })
    }

    /// The Authorization header of the next request.
    fn next_authorization(&mut self) -> String {
        let line = self.lines.next().and_then(Result::ok).unwrap_or_default();
        line.strip_prefix("AUTH ").unwrap_or_default().to_owned()
    }
}

impl Drop for ApiStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
