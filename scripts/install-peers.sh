#!/usr/bin/env bash
# Installs the real peers popgate is tested against, from Debian's apt (run as root).
# Dovecot's package would start a system instance on ports 110/995: a policy-rc.d that exits 101
# stops that during the install; tests start their own unprivileged instances.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(dovecot-core dovecot-pop3d curl mutt fetchmail getmail6 chromium tmux openssl python3 postgresql-15 iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all peers present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: missing ${missing[*]} and not root; tests needing them will skip (or fail under CI=true)" >&2
  exit 0
fi
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Never rely on (or collide with) the system instances.
systemctl disable --now dovecot postgresql >/dev/null 2>&1 || true
service dovecot stop >/dev/null 2>&1 || true
echo "install-peers: installed ${missing[*]}"
