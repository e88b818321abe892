//! `tessera completions` and `tessera man`, generated and loaded by the real tools.

use std::process::Command;

use crate::support::*;

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    for shell in ["bash", "zsh", "fish"] {
        let script = tessera.run(&["completions", shell]);
        assert_ok(&script, shell);
        let text = stdout(&script);
        for command in [
            "git-credential",
            "kube-credential",
            "exec",
            "import",
            "export",
        ] {
            assert!(text.contains(command), "{shell} completes {command}");
        }
    }
    // bash loads its script and registers the completion.
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <('{}' completions bash) && complete -p tessera",
                tessera_bin().display()
            ),
        ])
        .output()
        .expect("bash runs");
    assert_ok(&loaded, "bash loads the completion");
    assert!(stdout(&loaded).contains("tessera"), "{}", stdout(&loaded));
    let unknown = tessera.run(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_naming_every_command() {
    let tessera = Tessera::with_issuer("http://127.0.0.1:9");
    let page = tessera.run(&["man"]);
    assert_ok(&page, "man");
    let text = stdout(&page);
    assert!(text.contains(".TH tessera 1"), "{text}");
    for command in [
        "login",
        "token",
        "exec",
        "git\\-credential",
        "kube\\-credential",
    ] {
        assert!(text.contains(command), "the page names {command}");
    }
}
