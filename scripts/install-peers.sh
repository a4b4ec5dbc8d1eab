#!/usr/bin/env bash
# Installs the real peers popgate is tested against, from Debian's apt (run as root; .ci/run calls
# it on a fresh Debian 12). Idempotent: installs only what is missing.
#
# Dovecot's package would start a system instance (110/995, and a socket unit on 143/993): a
# policy-rc.d that exits 101 stops that during the install, and any system instance is stopped and
# disabled afterwards. Tests start their own unprivileged instances (test/helpers/dovecot.ts) and
# never rely on the system one. PostgreSQL likewise: tests make throwaway clusters.
# dbus + gnome-keyring: the OS keyring test runs its own session (dbus-run-session) with an
# unlocked gnome-keyring-daemon; no system or user service is started.
#
# INSTALL_PEERS_FORCE=1 runs the install path even when everything is present (to check it).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(dovecot-core dovecot-pop3d curl mutt fetchmail procmail getmail6 chromium tmux openssl python3 postgresql-15 iproute2 dbus gnome-keyring)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${INSTALL_PEERS_FORCE:-0}" = 1 ]; then missing=("${packages[@]}"); fi

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

# Stops a system Dovecot (and PostgreSQL) so nothing listens on the standard ports.
stop_system_services() {
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot.socket dovecot.service >/dev/null 2>&1 || true
    systemctl disable --now postgresql.service >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/dovecot ]; then
    /etc/init.d/dovecot stop >/dev/null 2>&1 || true
  fi
  # A system master left running (e.g. started by hand): it uses the default base_dir.
  if [ -f /run/dovecot/master.pid ]; then
    kill "$(cat /run/dovecot/master.pid)" >/dev/null 2>&1 || true
  fi
}

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$is_root" -ne 1 ]; then
    echo "install-peers: missing ${missing[*]} and not root; tests needing them will skip (or fail under CI=true)" >&2
    exit 0
  fi
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# installed by popgate scripts/install-peers.sh: no services start during the install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
  fi
  cleanup() {
    if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
  }
  trap cleanup EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-peers: installed ${missing[*]}"
else
  echo "install-peers: all peers present"
fi

if [ "$is_root" -eq 1 ]; then stop_system_services; fi

# Checks: the binaries the tests use run, and no system Dovecot listens on the POP3/IMAP ports.
if ! version=$(/usr/sbin/dovecot --version 2>&1); then
  echo "install-peers: dovecot --version failed: $version" >&2
  exit 1
fi
echo "install-peers: dovecot $version"
for bin in curl openssl python3; do
  command -v "$bin" >/dev/null 2>&1 || { echo "install-peers: $bin is missing after the install" >&2; exit 1; }
done
if command -v ss >/dev/null 2>&1; then
  listeners=$(ss -Hltnp '( sport = :110 or sport = :995 or sport = :143 or sport = :993 )' 2>/dev/null || true)
  if printf '%s' "$listeners" | grep -q dovecot; then
    echo "install-peers: a system Dovecot still listens on a standard port:" >&2
    printf '%s\n' "$listeners" >&2
    exit 1
  fi
fi
