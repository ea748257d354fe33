#!/usr/bin/env bash
# Crash safety: kill -9 `p360 serve` at random moments while documents flow through it, restart
# it each time, and check that every document was handled exactly once in effect.
#
#   scripts/crash-test.sh [--events 2000] [--crashes 10] [--bin path/to/p360]
#
# Flow under test: drop folder → ingest (object store + DocumentReceived on the embedded queue)
# → `register` stage (document register). A generator writes the documents into the drop folder
# while the server is killed and restarted. At the end it checks:
#   - the register holds exactly N documents, each applied exactly once (no loss, no duplicate
#     effect), and its inbox holds exactly N event ids;
#   - the object store holds exactly N raw documents;
#   - no message is left on the queue or in its dead-letter queue; the drop folder is empty.
set -euo pipefail

events=2000
crashes=10
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --crashes) crashes="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$bin" ]; then
  target="${CARGO_TARGET_DIR:-$root/target}"
  (cd "$root" && cargo build -q -p p360)
  bin="$target/debug/p360"
fi

work="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"
patient="pat-crashtest"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export P360__API__LISTEN="127.0.0.1:$port"
export P360__DROP_FOLDER__INTERVAL_MS=50
export P360__DROP_FOLDER__SETTLE_MS=0
# Info logs of the two idempotency points, counted at the end as evidence that crashes cut work.
export P360_LOG=warn,p360_ingest::register=info,p360_ingest::service=info
export NO_COLOR=1
mkdir -p "$data/drop/$patient"

# Writes N distinct small PNGs into the drop folder in bursts, each atomically (hidden temp
# file, then rename), as a copy tool would.
# One burst per server life (n / crashes files, about every 1.2 s), so each life starts with a
# backlog and the kill lands while documents are being ingested and registered.
python3 - "$data/drop/$patient" "$events" "$crashes" <<'PY' &
import os, random, struct, sys, time, zlib
folder, n, crashes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_burst = max(1, n // crashes)
def png(i):
    w = h = 24
    rows = b"".join(b"\x00" + bytes(((x * 7 + y * 13 + i) ^ (i >> 8)) & 0xFF for x in range(w)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
i = 0
while i < n:
    burst = min(per_burst, n - i)
    for _ in range(burst):
        tmp = os.path.join(folder, f".doc-{i:05d}.tmp")
        with open(tmp, "wb") as f:
            f.write(png(i))
        os.rename(tmp, os.path.join(folder, f"doc-{i:05d}.png"))
        i += 1
    time.sleep(random.uniform(0.9, 1.5))
PY
generator=$!

start_server() {
  "$bin" --data-dir "$data" serve >>"$work/serve.log" 2>&1 &
  server=$!
}

# Keep crashing until the generator is done and at least $crashes restarts happened.
c=0
while [ "$c" -lt "$crashes" ] || kill -0 "$generator" 2>/dev/null; do
  c=$((c + 1))
  start_server
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 1.4), 2))')"
  kill -9 "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  left=$(find "$data/drop/$patient" -maxdepth 1 -name 'doc-*.png' | wc -l)
  echo "crash $c: killed -9; $left file(s) waiting in the drop folder"
done
wait "$generator"
crashes=$c

# Final run: let everything drain, then stop gracefully.
start_server
deadline=$((SECONDS + 180))
while :; do
  left=$(find "$data/drop/$patient" -maxdepth 1 -type f | wc -l)
  pending=$(python3 - "$data/queue.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
PY
)
  if [ "$left" -eq 0 ] && [ "$pending" -eq 0 ]; then break; fi
  if [ $SECONDS -gt $deadline ]; then echo "did not drain: $left files, $pending messages" >&2; exit 1; fi
  sleep 0.2
done
kill -TERM "$server"; wait "$server" || true

redelivered=$(grep -c 'already applied; skipping' "$work/serve.log" || true)
reingested=$(grep -c 'duplicate=true' "$work/serve.log" || true)
python3 - "$data" "$patient" "$events" "$crashes" "$redelivered" "$reingested" <<'PY'
import os, sqlite3, sys
data, patient, n, crashes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
redelivered, reingested = int(sys.argv[5]), int(sys.argv[6])
reg = sqlite3.connect(os.path.join(data, "documents.db"))
docs = reg.execute("SELECT COUNT(*), SUM(applied = 1), MIN(applied), MAX(applied) FROM documents WHERE patient_id = ?", (patient,)).fetchone()
inbox = reg.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
q = sqlite3.connect(os.path.join(data, "queue.db"))
live = q.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
dead = q.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
raw = os.path.join(data, "objects", "raw", patient)
names = os.listdir(raw) if os.path.isdir(raw) else []
# object_store's local store writes `<key>#<n>` and renames it into place; a kill -9 mid-write
# leaves the staging file behind, invisible to readers (object_store skips such names).
objects = sum("#" not in f for f in names)
staging = sum("#" in f for f in names)
rejected = os.path.join(data, "drop", ".rejected")
rejected_n = sum(len(f) for _, _, f in os.walk(rejected)) if os.path.isdir(rejected) else 0
checks = [
    ("documents registered", docs[0], n),
    ("documents applied exactly once", docs[1] or 0, n),
    ("register inbox entries (distinct events)", inbox, n),
    ("raw objects stored", objects, n),
    ("messages left on the queue", live, 0),
    ("dead letters", dead, 0),
    ("files rejected", rejected_n, 0),
]
ok = True
print(f"\ncrash test: {n} documents, {crashes} kill -9 restarts")
for name, got, want in checks:
    mark = "ok " if got == want else "FAIL"
    ok &= got == want
    print(f"  {mark} {name}: {got} (expected {want})")
print(f"  applied per document: min {docs[2]}, max {docs[3]}")
print(f"  staging files left by writes cut mid-way (invisible to readers): {staging}")
print(f"  work cut by crashes and redone: {reingested} file(s) re-ingested (stored before a crash, not yet removed),")
print(f"    {redelivered} event(s) redelivered after being applied (applied before a crash, not yet acked)")
print("crash test PASSED" if ok else "crash test FAILED")
sys.exit(0 if ok else 1)
PY
