#!/usr/bin/env bash
# Runs the unit tests and the demo on the other supported Node.js lines (22 and 24 LTS) besides
# the machine's own Node. Each runtime comes from npm's `node` package (no download outside the
# npm registry) and is cached under ${POPGATE_RUNTIME_CACHE:-~/.cache/popgate-runtimes}.
# Usage: scripts/test-runtimes.sh [MAJOR ...]   (default: 22 24)
# Ends with one line per runtime and exits non-zero when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
cache="${POPGATE_RUNTIME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popgate-runtimes}"
majors=("$@")
[ ${#majors[@]} -eq 0 ] && majors=(22 24)

status=0
results=()
for major in "${majors[@]}"; do
  dir="$cache/node$major"
  if [ ! -x "$dir/node_modules/.bin/node" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$major" >/dev/null
  fi
  bin="$(cd "$dir/node_modules/.bin" && pwd)"
  version="$("$bin/node" --version)"
  echo "=== Node $version: unit tests and the demo ==="
  # The demo test starts `npm start`, which must run on this Node too: it goes first on PATH.
  log="$(mktemp)"
  PATH="$bin:$PATH" "$bin/node" test/run.mjs test/unit/ test/interop/demo.test.ts 2>&1 | tee "$log" | grep -E '^(✖|not ok|secret scan)' || true
  line="$(tail -n 1 "$log")"
  rm -f "$log"
  results+=("Node $version: $line")
  case "$line" in
    *" 0 failed"*) ;;
    *) status=1 ;;
  esac
done
printf '%s\n' "${results[@]}"
exit $status
