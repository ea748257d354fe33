#!/usr/bin/env bash
# Starts or stops a moto server (an AWS-compatible endpoint from PyPI) on 127.0.0.1 for the
# AWS adapter tests.
#   scripts/moto.sh start   # installs moto into $P360_CACHE/moto-venv if needed, prints the endpoint
#   scripts/moto.sh stop
set -euo pipefail
cache="${P360_CACHE:-$HOME/.cache/p360}"
venv="$cache/moto-venv"
state="$cache/moto.state"
mkdir -p "$cache"

case "${1:-}" in
start)
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
  fi
  if [ -f "$state" ] && kill -0 "$(cut -d' ' -f1 "$state")" 2>/dev/null; then
    echo "http://127.0.0.1:$(cut -d' ' -f2 "$state")"; exit 0
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$cache/moto.log" 2>&1 &
  echo "$! $port" >"$state"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
      echo "http://127.0.0.1:$port"; exit 0
    fi
    sleep 0.1
  done
  echo "moto server did not start; see $cache/moto.log" >&2; exit 1
  ;;
stop)
  if [ -f "$state" ]; then kill "$(cut -d' ' -f1 "$state")" 2>/dev/null || true; rm -f "$state"; fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
