#!/bin/sh
# Runs a command with a private D-Bus session bus and an unlocked GNOME Keyring Secret
# Service, so the keyring tests run for real on a headless machine (CI, containers, SSH):
#
#   host-native/tests/with-secret-service.sh cargo test -p tessera --test store
#
# Needs the Debian packages dbus (dbus-run-session) and gnome-keyring. The keyring lives in
# a temporary HOME that is deleted afterwards; the user's own keyring is never touched.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0: $tool not found; install it: apt-get install -y dbus gnome-keyring" >&2
        exit 2
    fi
done

# cargo and rustup find their homes through HOME unless told: keep the real ones.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
keyring_home=$(mktemp -d "${TMPDIR:-/tmp}/tessera-keyring.XXXXXX")
trap 'rm -rf "$keyring_home"' EXIT
trap 'exit 130' INT TERM
export HOME="$keyring_home"
export XDG_DATA_HOME="$keyring_home/.local/share"
export XDG_RUNTIME_DIR="$keyring_home/run"
mkdir -m 0700 -p "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS
# Inside this wrapper the keyring must work: tests fail rather than skip.
export TESSERA_TEST_REQUIRE_KEYRING=1

# --unlock creates the login keyring with the password read from stdin and unlocks it.
# The daemon exits with the session bus when the command ends.
dbus-run-session -- sh -c '
    printf %s tessera-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec "$@"' sh "$@"
