#!/usr/bin/env bash
# Crash safety: kill -9 `p360 serve` at random moments while documents and payor feed batches
# flow through it, restart it each time, and check that every document and every resolved fact
# was applied exactly once in effect.
#
#   scripts/crash-test.sh [--events 2000] [--crashes 10] [--bin path/to/p360]
#
# Flows under test:
#   - documents: drop folder → ingest (object store + DocumentReceived on the embedded queue)
#     → `register` stage (document register; the document as a DocumentReference fact) → graph
#     writer (Oxigraph) → lake sink (Parquet). A generator writes the documents into the drop
#     folder while the server is killed and restarted.
#   - payor feeds: two batches made by scripts/feedgen (A: 200 members, about 3,000 lines of
#     claims, pharmacy fills, HL7 lab results and HIE FHIR NDJSON; B: 60 members, another mix)
#     published with `p360 feeds submit` into the same data dir during server lives →
#     watcher (FeedBatchReceived) → `enrich` stage (match, resolve, one FactsResolved per member)
#     → graph writer → lake sink. Kills are timed on the log and the queue: inside the enrich
#     stage's run of A, then while the graph writer still holds A's FactsResolved and the lake
#     sink their GraphChanged, then (after A is submitted a second time, which must change
#     nothing) inside a lake flush of B's changes; the other kills land at random.
# At the end it checks:
#   - the register holds exactly N documents, each applied exactly once (no loss, no duplicate
#     effect), and its inbox holds exactly N event ids;
#   - the object store holds exactly N raw documents;
#   - the graph holds exactly N DocumentReference facts (read back through the API);
#   - the lake holds exactly N graph_changes rows, N distinct facts, each `added` once (read by
#     DuckDB, the Python named by P360_LAKE_PYTHON), and no half-written batch;
#   - no message is left on any queue or in its dead-letter queue; the drop folder is empty;
#   - per batch: the report exists (and its counts are the offline run's), the batch is marked
#     received, the second submission changed nothing and was not announced again;
#   - the graph, read back member by member through the API as each member, holds exactly the
#     facts `p360 enrich` produces offline from the same files: per member the same facts (type,
#     code, day, value or practitioner) with the same source records;
#   - the lake holds each batch member's graph change once (no repeated (commit, fact) pair,
#     one commit per member), the same distinct facts as the graph (in graph_changes and, for
#     observations, conditions and medications, in the typed tables), the graph's source count
#     as each fact's latest, and no Parquet file outside a committed ledger entry.
# Failures print counts and ids, never names, codes or values (see scripts/crash-feeds.py).
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
feeds="$root/scripts/crash-feeds.py"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export P360__API__LISTEN="127.0.0.1:$port"
export P360__DROP_FOLDER__INTERVAL_MS=50
export P360__DROP_FOLDER__SETTLE_MS=0
# Info logs of the idempotency points, counted at the end as evidence that crashes cut work, and
# of the feed watcher and the enrich stage, which the kills inside a batch are timed on.
export P360_LOG=warn,p360_ingest::register=info,p360_ingest::service=info,p360_sink=info,p360_enrich=info,p360::system=info
# Short lake flushes, so that kills land inside them too.
export P360__LAKE__FLUSH_INTERVAL_MS=300
# A batch whose run a kill cut comes back once its lease runs out (300 s by default). The
# runner extends the lease every third of this while a batch runs, so a short one only shortens
# that wait.
export P360__STAGES__ENRICH__VISIBILITY_SECS=6
export NO_COLOR=1
mkdir -p "$data/drop/$patient" "$work/tmp"
touch "$work/serve.log"
# The script's stderr, for a helper run inside a group whose stderr is discarded.
exec 3>&2

# Two payor batches with members of their own (feedgen's seeds give disjoint member ids; checked
# below, since a member in both would need a merged expectation). The reference is the offline
# run of the same files, `p360 enrich`; it also times the kill inside the server's run of A.
python3 "$root/scripts/feedgen/feedgen.py" "$work/feeds/a" --members 200 --seed 3601 \
  --lines-per-member 8 >/dev/null
python3 "$root/scripts/feedgen/feedgen.py" "$work/feeds/b" --members 60 --seed 3602 \
  --profile holdout >/dev/null
batch_a="crash-a"
batch_b="crash-b"
started=$(date +%s.%N)
"$bin" enrich --members "$work/feeds/a/batch/members.csv" "$work/feeds/a/batch" \
  --out "$work/offline/a" --quiet 2>/dev/null
enrich_secs=$(python3 -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 2))' "$started")
"$bin" enrich --members "$work/feeds/b/batch/members.csv" "$work/feeds/b/batch" \
  --out "$work/offline/b" --quiet 2>/dev/null
for b in a b; do tail -n +2 "$work/feeds/$b/batch/members.csv" | cut -d, -f1; done >"$work/members.tsv"
if [ "$(sort "$work/members.tsv" | uniq -d | wc -l)" -ne 0 ]; then
  echo "feedgen gave the two batches common member ids; choose other seeds" >&2
  exit 2
fi
t_offline=$SECONDS

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

# The enrich stage unpacks a batch into a temporary directory, which a kill leaves behind: kept
# under the work dir (removed at exit) and counted at the end.
start_server() {
  mark=$(stat -c %s "$work/serve.log")
  TMPDIR="$work/tmp" "$bin" --data-dir "$data" serve >>"$work/serve.log" 2>&1 &
  server=$!
}
# This life's log lines (those after `mark`), and whether they hold a pattern. (Not `grep -q`:
# it stops at the first match, `tail` then dies of SIGPIPE, and pipefail reports no match.)
life_log() { tail -c +$((mark + 1)) "$work/serve.log"; }
life_has() { life_log | grep -- "$1" >/dev/null; }
wait_log() {
  local deadline=$((SECONDS + $2))
  until life_has "$1"; do
    if [ $SECONDS -gt $deadline ]; then echo "crash $c: no '$1' within $2 s" >&2; exit 1; fi
    sleep 0.05
  done
}
pause() { sleep "$(python3 -c 'import random, sys; print(round(random.uniform(float(sys.argv[1]), float(sys.argv[2])), 2))' "$1" "$2")"; }
# submit <feedgen set> <batch id> <log>
submit() {
  if ! "$bin" --data-dir "$data" feeds submit "$work/feeds/$1/batch" --batch-id "$2" \
    --source-system crash-test >"$3" 2>&1; then
    echo "crash $c: \`p360 feeds submit\` of $2 failed:" >&2
    cat "$3" >&2
    exit 1
  fi
}

# Keep crashing until the generator is done, at least $crashes restarts happened and every feed
# step ran. Feed steps, one per life from the second on:
#   1. submit A; kill once the watcher announced it, a fraction of the offline run's time later
#      (inside the enrich stage's run: checked on the log);
#   2. the batch comes back after its lease; once resolved, kill while the graph writer still
#      holds FactsResolved of A's members and the lake sink their GraphChanged;
#   3. submit A again at a random moment (must change nothing); random kill;
#   4. submit B at a random moment; once resolved, kill inside a lake flush of its changes.
c=0
step=0
in_enrich=0
mid_batch=0
in_flush=0
batch_kills=0
while [ "$c" -lt "$crashes" ] || kill -0 "$generator" 2>/dev/null || [ "$step" -lt 4 ]; do
  c=$((c + 1))
  start_server
  note=""
  if [ "$c" -ge 2 ] && [ "$step" -lt 4 ]; then
    step=$((step + 1))
    case "$step" in
      1)
        pause 0.1 0.5
        submit a "$batch_a" "$work/submit-a.log"
        wait_log "feed batch received batch_id=$batch_a" 30
        pause "$(python3 -c "print($enrich_secs * 0.15)")" "$(python3 -c "print($enrich_secs * 0.6)")"
        ;;
      2)
        if [ "$in_enrich" -eq 0 ]; then
          # Step 1's kill came after the run (the batch may be acked already): nothing to time on.
          pause 0.3 1.4
        else
          wait_log "feed batch resolved batch_id=$batch_a" 120
          if python3 "$feeds" wait-mid-batch "$data" "$patient" 60; then
            mid_batch=$((mid_batch + 1))
            note=" with $batch_a half through the graph writer and the lake sink"
          else
            note=" (the graph writer had applied all of $batch_a before the kill)"
          fi
        fi
        ;;
      3)
        pause 0.1 0.6
        sha_before=$(sha256sum "$data/objects/feeds/$batch_a/_manifest.json" | cut -d' ' -f1)
        resubmitted_at=$(stat -c %s "$work/serve.log")
        submit a "$batch_a" "$work/resubmit-a.log"
        note=" after submitting $batch_a again"
        pause 0.2 1.0
        ;;
      4)
        pause 0.1 0.6
        submit b "$batch_b" "$work/submit-b.log"
        wait_log "feed batch resolved batch_id=$batch_b" 120
        # Inside a lake flush of its changes (the ledger entry pending, the files being
        # written): the helper kills the moment it sees one, quicker than a round trip through
        # this shell. (Its stderr goes to fd 3, the script's; the group's to /dev/null hides
        # bash's "Killed" notice for a job it did not kill itself.)
        if { python3 "$feeds" kill-in-flush "$data" "$work/feeds/b/batch/members.csv" "$server" 10 2>&3; } 2>/dev/null; then
          in_flush=1
          note=" inside a lake flush of $batch_b's changes"
        else
          note=" (no lake flush of $batch_b's changes began within 10 s of its run)"
        fi
        ;;
    esac
  else
    pause 0.3 1.4
  fi
  kill -9 "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ "$step" -eq 1 ] && [ "$in_enrich" -eq 0 ]; then
    if life_has "feed batch resolved batch_id=$batch_a"; then
      note=" (after the enrich stage resolved $batch_a: too late for a kill inside it)"
    else
      in_enrich=1
      note=" inside the enrich stage's run of $batch_a"
    fi
  fi
  left=$(find "$data/drop/$patient" -maxdepth 1 -name 'doc-*.png' | wc -l)
  if [ "$step" -ge 1 ]; then
    # What the kill cut: the batch members' events still on the queues.
    probe=$(python3 "$feeds" probe "$data" "$patient")
    case "$probe" in *resolved*|*changed*|*batch_received*) batch_kills=$((batch_kills + 1)) ;; esac
    echo "crash $c: killed -9$note; $left file(s) waiting in the drop folder; live: $probe"
  else
    echo "crash $c: killed -9; $left file(s) waiting in the drop folder"
  fi
done
wait "$generator"
crashes=$c
t_loop=$SECONDS

# A patient account for the record's owner, to read the graph back through the API.
"$bin" --data-dir "$data" users add --username crash-owner --role patient \
  --patient-id "$patient" --password 'crash-test-password' >/dev/null 2>&1
token=$("$bin" --data-dir "$data" users token --username crash-owner 2>/dev/null)

# Final run: let everything drain, then stop gracefully.
start_server
# Meanwhile an account per batch member (the member id is the patient id), to read each record
# back as its owner, in the time the drain waits anyway for the leases the kills left. `users`
# builds the whole system, graph included, and a read-only open of the live RocksDB can fail
# while the server compacts it (an SST file deleted under the opener: "Corruption ... No such
# file"); accounts need no graph, so these commands are pointed at an unused SPARQL endpoint.
# Two at a time: each is mostly process start and an argon2 hash.
accounts() {
  awk -v k="$1" 'NR % 2 == k' "$work/members.tsv" | while read -r m; do
    P360__GRAPH__KIND=sparql P360__GRAPH__QUERY_URL=http://127.0.0.1:9/unused \
      "$bin" --data-dir "$data" users add --username "crash-$m" --role patient \
      --patient-id "$m" --password 'crash-test-password' >/dev/null || exit 1
  done
}
accounts 0 >"$work/accounts-0.log" 2>&1 &
accounts_0=$!
accounts 1 >"$work/accounts-1.log" 2>&1 &
accounts_1=$!
deadline=$((SECONDS + 180))
while :; do
  left=$(find "$data/drop/$patient" -maxdepth 1 -type f | wc -l)
  pending=$(python3 - "$data/queue.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
PY
)
  reports=0
  for b in "$batch_a" "$batch_b"; do
    [ -f "$data/objects/feeds/$b/_report.json" ] && reports=$((reports + 1))
  done
  if [ "$left" -eq 0 ] && [ "$pending" -eq 0 ] && [ "$reports" -eq 2 ]; then break; fi
  if [ $SECONDS -gt $deadline ]; then
    echo "did not drain: $left files, $pending messages, $reports of 2 batch reports;" \
      "live: $(python3 "$feeds" probe "$data" "$patient")" >&2
    exit 1
  fi
  sleep 0.2
done
t_drained=$SECONDS
for job in "$accounts_0" "$accounts_1"; do
  if ! wait "$job"; then
    echo "creating the batch members' accounts failed:" >&2
    cat "$work/accounts-0.log" "$work/accounts-1.log" >&2
    exit 1
  fi
done
graph_docs=$(python3 - "http://127.0.0.1:$port/fhir/Patient/$patient/\$everything?_type=DocumentReference&_count=1" "$token" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Bearer {sys.argv[2]}"})
print(json.load(urllib.request.urlopen(req))["total"])
PY
)
python3 "$feeds" read-graph "http://127.0.0.1:$port" 'crash-test-password' "$work/members.tsv" \
  "$work/graph.json"
kill -TERM "$server"; wait "$server" || true

# The batch reports through the CLI too (what an operator runs).
reports_cli=0
for b in "$batch_a" "$batch_b"; do
  if "$bin" --data-dir "$data" feeds report "$b" 2>/dev/null \
    | python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)["batch_id"] != sys.argv[1])' "$b"; then
    reports_cli=$((reports_cli + 1))
  fi
done
sha_after=$(sha256sum "$data/objects/feeds/$batch_a/_manifest.json" | cut -d' ' -f1)
resubmit_unchanged=0
if grep -q 'nothing changed' "$work/resubmit-a.log" && [ "$sha_before" = "$sha_after" ]; then
  resubmit_unchanged=1
fi
reannounced=$(tail -c +$((resubmitted_at + 1)) "$work/serve.log" | grep -c "feed batch received batch_id=$batch_a" || true)
"$lake_python" "$feeds" check "$data" "$patient" "$work/graph.json" "$work/feed-checks.json" \
  "$batch_a:$work/offline/a:$work/feeds/a/batch/members.csv" \
  "$batch_b:$work/offline/b:$work/feeds/b/batch/members.csv"

# The documents' rows: the patient's lake key is an HMAC of its id (sink/src/lake/pseudonym.rs).
lake=$("$lake_python" - "$data/objects/lake" "$data/keys/lake-pseudonym.key" "$patient" <<'PY'
import duckdb, hashlib, hmac, json, os, sys
root, keyfile, patient = sys.argv[1:4]
key = bytes.fromhex(open(keyfile).read().strip())
pk = hmac.new(key, b"p360/lake/patient\x00" + patient.encode(), hashlib.sha256).hexdigest()[:32]
con = duckdb.connect()
rows, facts, added_once = con.execute(f"""
    SELECT count(*), count(DISTINCT fact_id),
           count(*) FILTER (WHERE change_kind = 'added')
    FROM read_parquet('{root}/graph_changes/*/*/*/*.parquet', union_by_name = true)
    WHERE patient_key = ?""", [pk]).fetchone()
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
resolved_runs=$(grep -c 'feed batch resolved' "$work/serve.log" || true)
# Work directories of enrich runs still on disk: a killed run's is removed by the next run.
enrich_tmp=$( { find "$data/work/enrich" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true; } | wc -l)
python3 - "$data" "$patient" "$events" "$crashes" "$redelivered" "$reingested" "$graph_docs" \
  "$graph_replayed" "$lake_skipped" "${rolled_back:-0}" $lake "$work/feed-checks.json" \
  "$reports_cli" "$resubmit_unchanged" "$reannounced" "$in_enrich" "$mid_batch" "$in_flush" \
  "$batch_kills" "$resolved_runs" "$enrich_tmp" "$t_offline" "$t_loop" "$t_drained" "$SECONDS" <<'PY'
import json, os, sqlite3, sys
data, patient, n, crashes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
redelivered, reingested, graph_docs = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
graph_replayed, lake_skipped, rolled_back = int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
lake_rows, lake_facts, lake_added, lake_pending = map(int, sys.argv[11:15])
feed = json.load(open(sys.argv[15]))
reports_cli, resubmit_unchanged, reannounced = map(int, sys.argv[16:19])
in_enrich, mid_batch, in_flush, batch_kills, resolved_runs, enrich_tmp = map(int, sys.argv[19:25])
t_offline, t_loop, t_drained, t_end = map(int, sys.argv[25:29])
reg = sqlite3.connect(os.path.join(data, "documents.db"))
docs = reg.execute("SELECT COUNT(*), SUM(applied = 1), MIN(applied), MAX(applied) FROM documents WHERE patient_id = ?", (patient,)).fetchone()
inbox = reg.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
q = sqlite3.connect(os.path.join(data, "queue.db"))
queues = [r[0] for r in q.execute("SELECT name FROM queues ORDER BY name")]
live = dict(q.execute("SELECT queue, COUNT(*) FROM messages GROUP BY 1").fetchall())
dead = dict(q.execute("SELECT queue, COUNT(*) FROM dead_letters GROUP BY 1").fetchall())
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
    ("lake graph_changes rows of the documents' patient", lake_rows, n),
    ("lake distinct facts of the documents' patient", lake_facts, n),
    ("lake rows of the documents' patient of kind 'added'", lake_added, n),
    ("lake batches left pending", lake_pending, 0),
    ("files rejected", rejected_n, 0),
    ("batch reports printed by `p360 feeds report`", reports_cli, 2),
    ("second submission of crash-a changed nothing", resubmit_unchanged, 1),
    ("announcements of crash-a after its second submission", reannounced, 0),
    ("enrich work directories left behind by killed runs", enrich_tmp, 0),
]
# Every queue the stages declared, the enrich stage's included, by name: a queue that is not
# there at all is a failure too (the stage was never wired).
for name in sorted(set(queues) | {"enrich", "graph-writer", "lake-sink", "register"}):
    checks.append((f"messages left on queue {name}", live.get(name, 0) if name in queues else -1, 0))
    checks.append((f"dead letters of queue {name}", dead.get(name, 0) if name in queues else -1, 0))
checks += [tuple(r) for r in feed["rows"]]
ok = True
print(f"\ncrash test: {n} documents and 2 feed batches, {crashes} kill -9 restarts")
for name, got, want in checks:
    mark = "ok " if got == want else "FAIL"
    ok &= got == want
    print(f"  {mark} {name}: {got} (expected {want})")
for line in feed["notes"]:
    print(f"  note: {line}")
print(f"  applied per document: min {docs[2]}, max {docs[3]}")
print(f"  staging files left by writes cut mid-way (invisible to readers): {staging}")
print(f"  work cut by crashes and redone: {reingested} file(s) re-ingested (stored before a crash, not yet removed),")
print(f"    {redelivered} event(s) redelivered to the register after being applied,")
print(f"    {graph_replayed} event(s) redelivered to the graph writer after their commit (changes replayed),")
print(f"    {lake_skipped} change(s) redelivered to the lake sink after their batch (skipped),")
print(f"    {rolled_back} lake batch(es) cut by a crash and rolled back at restart")
print(f"  feed batches: {in_enrich} kill(s) inside the enrich stage's run, {mid_batch} with a batch")
print(f"    half through the graph writer and the lake sink, {in_flush} inside a lake flush of a")
print(f"    batch's changes, {batch_kills} with batch events live;")
print(f"    {resolved_runs} enrich run(s) resolved for 2 batches (more: a run redone after a kill);")
for name in queues:
    if live.get(name) or dead.get(name):
        print(f"  queue {name}: {live.get(name, 0)} live, {dead.get(name, 0)} dead")
if dead:
    for queue, error, count in q.execute(
        "SELECT queue, substr(last_error, 1, 160), COUNT(*) FROM dead_letters GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"
    ):
        print(f"  dead letters on {queue} ({count}): {error}")
print(f"  seconds: feedgen and offline runs {t_offline}, crash loop {t_loop - t_offline}, "
      f"final drain {t_drained - t_loop}, reads and checks {t_end - t_drained}, total {t_end}")
print("crash test PASSED" if ok else "crash test FAILED")
sys.exit(0 if ok else 1)
PY
