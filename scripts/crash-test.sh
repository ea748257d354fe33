#!/usr/bin/env bash
# Crash safety: kill -9 `p360 serve` at random moments while documents flow through it, restart
# it each time, and check that every document was handled exactly once in effect.
#
#   scripts/crash-test.sh [--events 2000] [--crashes 10] [--bin path/to/p360]
#
# Flow under test: drop folder → ingest (object store + DocumentReceived on the embedded queue)
# → `register` stage (document register; the document as a DocumentReference fact) → graph
# writer (Oxigraph) → lake sink (Parquet). A generator writes the documents into the drop folder
# while the server is killed and restarted. At the end it checks:
#   - the register holds exactly N documents, each applied exactly once (no loss, no duplicate
#     effect), and its inbox holds exactly N event ids;
#   - the object store holds exactly N raw documents;
#   - the graph holds exactly N DocumentReference facts (read back through the API);
#   - the lake holds exactly N graph_changes rows, N distinct facts, each `added` once (read by
#     DuckDB, the Python named by P360_LAKE_PYTHON), and no half-written batch;
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
lake_python="${P360_LAKE_PYTHON:-}"
if [ -z "$lake_python" ] || ! "$lake_python" -c 'import duckdb' 2>/dev/null; then
  echo "P360_LAKE_PYTHON must name a Python with duckdb installed (scripts/test.sh sets it up)" >&2
  exit 2
fi
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
export P360_LOG=warn,p360_ingest::register=info,p360_ingest::service=info,p360_sink=info
# Short lake flushes, so that kills land inside them too.
export P360__LAKE__FLUSH_INTERVAL_MS=300
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

# A patient account for the record's owner, to read the graph back through the API.
"$bin" --data-dir "$data" users add --username crash-owner --role patient \
  --patient-id "$patient" --password 'crash-test-password' >/dev/null 2>&1
token=$("$bin" --data-dir "$data" users token --username crash-owner 2>/dev/null)

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
graph_docs=$(python3 - "http://127.0.0.1:$port/fhir/Patient/$patient/\$everything?_type=DocumentReference&_count=1" "$token" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"})
print(json.load(urllib.request.urlopen(req))["total"])
PY
)
kill -TERM "$server"; wait "$server" || true

lake=$("$lake_python" - "$data/objects/lake" <<'PY'
import duckdb, json, os, sys
root = sys.argv[1]
con = duckdb.connect()
rows, facts, added_once = con.execute(f"""
    SELECT count(*), count(DISTINCT fact_id),
           count(*) FILTER (WHERE change_kind = 'added')
    FROM read_parquet('{root}/graph_changes/*/*/*/*.parquet')""").fetchone()
ledger = os.path.join(root, "_ledger")
pending = 0
for f in os.listdir(ledger):
    if f.endswith(".json"):
        pending += json.load(open(os.path.join(ledger, f)))["state"] != "committed"
print(rows, facts, added_once, pending)
PY
)
redelivered=$(grep -c 'already in the register' "$work/serve.log" || true)
reingested=$(grep -c 'duplicate=true' "$work/serve.log" || true)
graph_replayed=$(grep -c 'already applied; replaying its changes' "$work/serve.log" || true)
lake_skipped=$(grep -c 'commit already in the lake' "$work/serve.log" || true)
rolled_back=$(python3 -c 'import re,sys; print(sum(int(x) for x in re.findall(r"rolled_back=(\d+)", open(sys.argv[1]).read())))' "$work/serve.log")
python3 - "$data" "$patient" "$events" "$crashes" "$redelivered" "$reingested" "$graph_docs" \
  "$graph_replayed" "$lake_skipped" "${rolled_back:-0}" $lake <<'PY'
import os, sqlite3, sys
data, patient, n, crashes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
redelivered, reingested, graph_docs = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
graph_replayed, lake_skipped, rolled_back = int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
lake_rows, lake_facts, lake_added, lake_pending = map(int, sys.argv[11:15])
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
    ("DocumentReference facts in the graph", graph_docs, n),
    ("lake graph_changes rows", lake_rows, n),
    ("lake distinct facts", lake_facts, n),
    ("lake rows of kind 'added'", lake_added, n),
    ("lake batches left pending", lake_pending, 0),
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
print(f"    {redelivered} event(s) redelivered to the register after being applied,")
print(f"    {graph_replayed} event(s) redelivered to the graph writer after their commit (changes replayed),")
print(f"    {lake_skipped} change(s) redelivered to the lake sink after their batch (skipped),")
print(f"    {rolled_back} lake batch(es) cut by a crash and rolled back at restart")
if dead:
    for queue, error, count in q.execute(
        "SELECT queue, substr(last_error, 1, 160), COUNT(*) FROM dead_letters GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"
    ):
        print(f"  dead letters on {queue} ({count}): {error}")
print("crash test PASSED" if ok else "crash test FAILED")
sys.exit(0 if ok else 1)
PY
