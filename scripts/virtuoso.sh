#!/usr/bin/env bash
# Starts or stops a private Virtuoso (Debian `virtuoso-opensource`), an independent SPARQL 1.1
# server, on 127.0.0.1 for the remote GraphStore adapter's tests.
#   scripts/virtuoso.sh start   # prints the SPARQL endpoint URL
#   scripts/virtuoso.sh stop
set -euo pipefail
cache="${P360_CACHE:-$HOME/.cache/p360}"
dir="$cache/virtuoso"
state="$cache/virtuoso.state"
mkdir -p "$cache"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "${1:-}" in
start)
  command -v virtuoso-t >/dev/null || { echo "virtuoso-t not found: apt-get install virtuoso-opensource" >&2; exit 1; }
  if [ -f "$state" ] && kill -0 "$(cut -d' ' -f1 "$state")" 2>/dev/null; then
    echo "http://127.0.0.1:$(cut -d' ' -f2 "$state")/sparql"; exit 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  isql_port=$(free_port); http_port=$(free_port)
  python3 - "$dir" "$isql_port" "$http_port" <<'PY'
import configparser, sys
d, isql, http = sys.argv[1:4]
src = "/etc/virtuoso-opensource-7/virtuoso.ini"
c = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=(";",), inline_comment_prefixes=(";",))
c.optionxform = str
c.read(src)
for sec, key, val in [
    ("Database", "DatabaseFile", f"{d}/virtuoso.db"), ("Database", "ErrorLogFile", f"{d}/virtuoso.log"),
    ("Database", "LockFile", f"{d}/virtuoso.lck"), ("Database", "TransactionFile", f"{d}/virtuoso.trx"),
    ("Database", "xa_persistent_file", f"{d}/virtuoso.pxa"),
    ("TempDatabase", "DatabaseFile", f"{d}/virtuoso-temp.db"), ("TempDatabase", "TransactionFile", f"{d}/virtuoso-temp.trx"),
    ("Parameters", "ServerPort", f"127.0.0.1:{isql}"), ("HTTPServer", "ServerPort", f"127.0.0.1:{http}"),
    ("Parameters", "NumberOfBuffers", "20000"), ("Parameters", "MaxDirtyBuffers", "15000"),
]:
    if not c.has_section(sec):
        c.add_section(sec)
    c.set(sec, key, val)
with open(f"{d}/virtuoso.ini", "w") as f:
    c.write(f)
PY
  # The whole background job's output goes to a file: a job holding our stdout would keep a
  # caller's `$(scripts/virtuoso.sh start)` waiting forever. `exec` makes $! virtuoso's pid.
  (cd "$dir" && exec virtuoso-t +foreground +configfile "$dir/virtuoso.ini") \
    >"$dir/stdout.log" 2>&1 </dev/null &
  echo "$! $http_port $isql_port" >"$state"
  for _ in $(seq 1 300); do
    if grep -q "Server online" "$dir/virtuoso.log" 2>/dev/null; then
      isql-vt "127.0.0.1:$isql_port" dba dba exec='GRANT SPARQL_UPDATE TO "SPARQL";' >/dev/null </dev/null
      echo "http://127.0.0.1:$http_port/sparql"; exit 0
    fi
    sleep 0.2
  done
  echo "virtuoso did not start; see $dir/virtuoso.log" >&2; exit 1
  ;;
stop)
  if [ -f "$state" ]; then kill "$(cut -d' ' -f1 "$state")" 2>/dev/null || true; rm -f "$state"; fi
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
