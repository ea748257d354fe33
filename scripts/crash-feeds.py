#!/usr/bin/env python3
"""The payor-feed half of scripts/crash-test.sh: probes and checks of feed batches published
while `p360 serve` is being killed. Standard library only, except `check`, which reads the lake
with DuckDB (run it with the Python named by P360_LAKE_PYTHON).

    crash-feeds.py probe DATA DOC_PATIENT
        one line: live messages per queue (a batch member's events counted apart from the
        documents' patient), to say where a kill landed
    crash-feeds.py wait-mid-batch DATA DOC_PATIENT TIMEOUT
        returns 0 as soon as the graph writer still holds FactsResolved of batch members and
        the lake sink already holds their GraphChanged (both mid-batch), 1 if that moment was
        missed (the graph writer's queue ran dry) or TIMEOUT seconds passed
    crash-feeds.py kill-in-flush DATA ROSTER_CSV PID TIMEOUT
        kills PID (SIGKILL) the moment the lake ledger holds a `pending` entry naming a commit
        of a member of the roster (a flush between its ledger entry and its files); returns 0
        if it did, 1 if no such flush began within TIMEOUT seconds
    crash-feeds.py read-graph URL PASSWORD MEMBERS_TSV OUT
        every member's record through `GET /fhir/Patient/{id}/$everything` (all pages), logged
        in as the member's own account (`crash-<member id>`), written to OUT as JSON
    crash-feeds.py check DATA DOC_PATIENT GRAPH_JSON OUT BATCH...
        BATCH = batch_id:offline_out_dir:roster_csv; writes the checks as JSON rows
        [name, got, expected] plus notes to OUT

Output names ids and counts only: never a name, a code, a date or a value.
"""

from __future__ import annotations

import collections
import concurrent.futures
import csv
import glob
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import sys
import time
import urllib.request

BATCH_EVENTS = ("p360.facts.resolved", "p360.graph.changed")
ANNOUNCED = "p360.feed.batch_received"


def live(data: str, doc_patient: str) -> dict[tuple[str, str], int]:
    """(queue, kind) → live messages; kind is the event type for feed announcements and batch
    members' events, else "other" (the documents' patient's). Read-only: a read-write connection closed while
    the server is down would checkpoint the WAL, and the restart would no longer recover it."""
    q = sqlite3.connect(f"file:{os.path.join(data, 'queue.db')}?mode=ro", uri=True, timeout=10)
    try:
        rows = q.execute(
            "SELECT queue, json_extract(body, '$.type'), COALESCE(json_extract(body, '$.patientid'), ''),"
            " COUNT(*) FROM messages GROUP BY 1, 2, 3"
        ).fetchall()
    finally:
        q.close()
    out: dict[tuple[str, str], int] = collections.Counter()
    for queue, kind, patient, n in rows:
        batch = (kind in BATCH_EVENTS and patient and patient != doc_patient) or kind == ANNOUNCED
        out[(queue, kind if batch else "other")] += n
    return out


def probe(data: str, doc_patient: str) -> None:
    try:
        counts = live(data, doc_patient)
    except sqlite3.Error as e:
        print(f"queue not readable read-only just now ({e.__class__.__name__})")
        return
    parts = []
    for queue in sorted({q for q, _ in counts}):
        mine = {k: n for (q, k), n in counts.items() if q == queue and n}
        if mine:
            parts.append(queue + " " + "+".join(f"{n} {k.removeprefix('p360.')}" for k, n in sorted(mine.items())))
    print("; ".join(parts) or "no live messages")


def wait_mid_batch(data: str, doc_patient: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen_resolved = False
    while time.monotonic() < deadline:
        try:
            counts = live(data, doc_patient)
        except sqlite3.OperationalError:
            time.sleep(0.05)
            continue
        resolved = counts.get(("graph-writer", "p360.facts.resolved"), 0)
        changed = counts.get(("lake-sink", "p360.graph.changed"), 0)
        if resolved and changed:
            return 0
        if seen_resolved and not resolved:
            return 1
        seen_resolved |= resolved > 0
        time.sleep(0.05)
    return 1


def kill_in_flush(data: str, roster: str, pid: int, timeout: float) -> int:
    ledger = os.path.join(data, "objects", "lake", "_ledger")
    key = read_key(data)
    with open(roster, encoding="utf-8") as f:
        keys = {patient_key(key, r["member_id"]) for r in csv.DictReader(f)}
    done: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            names = [e.name for e in os.scandir(ledger) if e.name.endswith(".json")]
        except FileNotFoundError:
            names = []
        for name in names:
            if name in done:
                continue
            try:
                entry = json.load(open(os.path.join(ledger, name)))
            except (OSError, ValueError):
                continue  # rolled back or being replaced under us
            if entry["state"] != "pending":
                done.add(name)
            elif any(c.split("/", 1)[0] in keys for c in entry["commits"]):
                os.kill(pid, signal.SIGKILL)
                return 0
        time.sleep(0.002)
    return 1


def date_of(r: dict) -> str | None:
    for k in ("onsetDateTime", "effectiveDateTime", "performedDateTime", "occurrenceDateTime",
              "recordedDate", "authoredOn"):
        if r.get(k):
            return str(r[k])[:10]
    for k in ("effectivePeriod", "performedPeriod", "period"):
        if isinstance(r.get(k), dict) and r[k].get("start"):
            return str(r[k]["start"])[:10]
    return None


def signature(r: dict) -> tuple:
    """What makes a fact this fact, read from its FHIR resource the same way on both sides:
    type, primary code, day, and the encounter's practitioner or the observation's value."""
    kind = r["resourceType"]
    code = None
    if kind == "Encounter":
        code = (r.get("class") or {}).get("code")
    else:
        for k in ("code", "vaccineCode", "medicationCodeableConcept"):
            if k in r:
                codings = r[k].get("coding") or []
                code = codings[0].get("code") if codings else None
                break
    extra = None
    if kind == "Encounter":
        npis = [p.get("individual", {}).get("identifier", {}).get("value") for p in r.get("participant") or []]
        extra = ",".join(sorted(n for n in npis if n))
    elif kind == "Observation" and "valueQuantity" in r:
        v = r["valueQuantity"]
        extra = f"{v.get('comparator', '')}{round(float(v.get('value')), 6)} {v.get('code') or v.get('unit')}"
    return (kind, code, date_of(r), extra)


def facts_of(bundle_entries: list[dict], strip: str = "") -> dict[str, dict]:
    """fact id → {sig, sources} from a bundle's resources: each fact and its Provenance (one per
    fact naming every source offline, one per source in the API)."""
    facts, sources = {}, collections.defaultdict(list)
    for r in bundle_entries:
        kind = r.get("resourceType")
        if kind == "Patient":
            continue
        if kind == "Provenance":
            target = r["target"][0]["reference"].split("/", 1)[1]
            for e in r.get("entity") or []:
                value = e["what"]["identifier"]["value"]
                sources[target].append(value[len(strip):] if strip and value.startswith(strip) else value)
            continue
        facts[r["id"]] = {"sig": signature(r), "type": kind}
    for fid, f in facts.items():
        f["sources"] = sorted(sources.get(fid, []))
    return facts


def get_json(url: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def read_graph(base: str, password: str, members_tsv: str, out: str) -> None:
    members = [line.split("\t")[0] for line in open(members_tsv).read().split("\n") if line]

    def one(m: str) -> tuple[str, dict]:
        token = get_json(f"{base}/auth/token", body={"username": f"crash-{m}", "password": password})["access_token"]
        url = f"{base}/fhir/Patient/{m}/$everything?_count=1000"
        resources, total = [], None
        while url:
            page = get_json(url, token)
            total = page.get("total")
            resources += [e["resource"] for e in page.get("entry") or []]
            nxt = [lk["url"] for lk in page.get("link") or [] if lk.get("relation") == "next"]
            url = (nxt[0] if nxt[0].startswith("http") else base + nxt[0]) if nxt else None
        return m, {"total": total, "resources": resources}

    # A few at a time: each login costs the server an argon2 verification.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        record = dict(pool.map(one, members))
    json.dump(record, open(out, "w"))


def read_key(data: str) -> bytes:
    return bytes.fromhex(open(os.path.join(data, "keys", "lake-pseudonym.key")).read().strip())


def patient_key(key: bytes, patient: str) -> str:
    # As sink/src/lake/pseudonym.rs: HMAC-SHA256 over a label and the id, first 16 bytes.
    return hmac.new(key, b"p360/lake/patient\x00" + patient.encode(), hashlib.sha256).hexdigest()[:32]


def check(data: str, doc_patient: str, graph_json: str, out: str, batches: list[str]) -> None:
    import duckdb

    rows: list[list] = []  # [name, got, expected]
    notes: list[str] = []
    objects = os.path.join(data, "objects")
    graph = json.load(open(graph_json))
    expected: dict[str, dict] = {}  # member → fact id → fact (offline ids: matched by signature)
    roster: dict[str, str] = {}  # member → batch
    for spec in batches:
        undated = 0
        batch, offline, members_csv = spec.split(":")
        with open(members_csv, encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r["member_id"] in roster:
                    notes.append(f"member {r['member_id']} is in two batches; its expectation is not modelled")
                roster[r["member_id"]] = batch
        # The batch report, as the server wrote it, against the offline run's counts.
        report_path = os.path.join(objects, "feeds", batch, "_report.json")
        report = json.load(open(report_path)) if os.path.exists(report_path) else None
        rows.append([f"batch {batch}: report written", int(report is not None), 1])
        summary = json.load(open(os.path.join(offline, "summary.json")))
        if report is not None:
            differ = sorted(k for k in summary if report["summary"].get(k) != summary[k])
            rows.append([f"batch {batch}: report counts that differ from the offline run", len(differ), 0])
            if differ:
                notes.append(f"batch {batch}: report counts differing: {', '.join(differ)}")
        received = os.path.join(objects, "feeds", batch, "_received.json")
        rows.append([f"batch {batch}: marked received", int(os.path.exists(received)), 1])
        for path in glob.glob(os.path.join(offline, "members", "*.fhir.json")):
            m = os.path.basename(path).removesuffix(".fhir.json")
            facts = facts_of([e["resource"] for e in json.load(open(path))["entry"]])
            # The graph's model holds only dated facts (enrich/src/graph.rs); the report counts
            # the others as facts_not_representable.
            kept = {k: f for k, f in facts.items() if f["sig"][2] is not None}
            undated += len(facts) - len(kept)
            expected.setdefault(m, {}).update(kept)
        if report is not None:
            rows.append([f"batch {batch}: facts not representable (report) vs undated offline facts",
                         report.get("facts_not_representable", 0), undated])
        stored = glob.glob(os.path.join(objects, "facts", "*", f"enrich-{batch}.json"))
        want = sum(1 for m, fs in expected.items() if fs and roster.get(m) == batch)
        rows.append([f"batch {batch}: members' facts objects stored", len(stored), want])

    # The graph, member by member: the same facts (type, code, day, value or practitioner) with
    # the same sources as the offline run, nothing more.
    got_facts: dict[str, dict] = {}
    for m in roster:
        rec = graph.get(m, {"total": None, "resources": []})
        batch = roster[m]
        got_facts[m] = facts_of(rec["resources"], strip=f"{batch}/")
        if rec["total"] != len(got_facts[m]):
            notes.append(f"member {m}: $everything total {rec['total']} but {len(got_facts[m])} facts read")
    want_n = sum(len(fs) for fs in expected.values())
    got_n = sum(len(fs) for fs in got_facts.values())
    want_sources = sum(len(f["sources"]) for fs in expected.values() for f in fs.values())
    got_sources = sum(len(f["sources"]) for fs in got_facts.values() for f in fs.values())
    matched = 0
    differing = []
    for m in roster:
        want = collections.Counter((f["sig"], tuple(f["sources"])) for f in expected.get(m, {}).values())
        got = collections.Counter((f["sig"], tuple(f["sources"])) for f in got_facts[m].values())
        matched += sum((want & got).values())
        if want != got:
            differing.append(m)
    rows.append(["batch members read back through the API", len([m for m in roster if m in graph]), len(roster)])
    rows.append(["feed facts in the graph", got_n, want_n])
    rows.append(["feed facts equal to the offline run's (type, code, day, value, sources)", matched, want_n])
    rows.append(["fact sources (provenance entries) of the feed facts", got_sources, want_sources])
    rows.append(["members whose graph record differs from the offline run", len(differing), 0])
    if differing:
        notes.append("members differing (first 10): " + ", ".join(differing[:10]))
        for m in differing[:3]:
            w = {(f["sig"], tuple(f["sources"])) for f in expected.get(m, {}).values()}
            g = {(f["sig"], tuple(f["sources"])): fid for fid, f in got_facts[m].items()}
            only_graph = [fid for k, fid in g.items() if k not in w]
            notes.append(f"  member {m}: {len(expected.get(m, {}))} facts offline, {len(got_facts[m])} in the graph; "
                         f"{len(w - set(g))} only offline, graph-only fact ids: {', '.join(only_graph[:5]) or '-'}")

    # The lake: every graph change of the batch members exactly once, their facts all there.
    key = read_key(data)
    member_of = {patient_key(key, m): m for m in roster}
    doc_key = patient_key(key, doc_patient)
    lake = os.path.join(objects, "lake")
    con = duckdb.connect()

    def table(name: str) -> str:
        return f"read_parquet('{lake}/{name}/*/*/*/*.parquet', union_by_name = true)"

    changes = con.execute(f"""
        SELECT patient_key, commit_id, fact_id, change_kind, source_count FROM {table('graph_changes')}""").fetchall()
    per = collections.Counter((pk, c, f) for pk, c, f, _, _ in changes)
    dup = sum(n - 1 for n in per.values() if n > 1)
    rows.append(["lake graph_changes rows repeating a (commit, fact) pair (all patients)", dup, 0])
    strangers = {pk for pk, *_ in changes if pk not in member_of and pk != doc_key}
    rows.append(["lake patients who are neither a batch member nor the documents' patient", len(strangers), 0])
    lake_facts: dict[str, set] = collections.defaultdict(set)
    lake_sources: dict[tuple, int] = {}
    kinds = collections.Counter()
    commits_of: dict[str, set] = collections.defaultdict(set)
    for pk, c, f, kind, sc in changes:
        m = member_of.get(pk)
        if m is None:
            continue
        lake_facts[m].add(f)
        commits_of[m].add(c)
        kinds[kind] += 1
        lake_sources[(m, f)] = max(lake_sources.get((m, f), 0), sc or 0)
    graph_ids = {m: set(fs) for m, fs in got_facts.items()}
    batch_rows = sum(n for (pk, _, _), n in per.items() if pk in member_of)
    rows.append(["lake graph_changes rows of batch members", batch_rows, got_n])
    rows.append(["lake rows of batch members of kind 'added'", kinds.get("added", 0), got_n])
    rows.append(["lake distinct facts of batch members", sum(len(s) for s in lake_facts.values()), got_n])
    off = [m for m in roster if lake_facts.get(m, set()) != graph_ids.get(m, set())]
    rows.append(["members whose lake facts are not their graph facts", len(off), 0])
    if off:
        notes.append("members whose lake facts differ (first 10): " + ", ".join(off[:10]))
    # One graph commit per member and batch: a second commit id means an event applied twice.
    extra_commits = sum(max(0, len(cs) - 1) for cs in commits_of.values())
    rows.append(["batch members with more than one graph commit in the lake", extra_commits, 0])
    stale = sum(1 for m, fs in got_facts.items() for fid, f in fs.items()
                if lake_sources.get((m, fid), -1) != len(f["sources"]))
    rows.append(["batch facts whose latest lake source_count is not the graph's", stale, 0])
    typed_kinds = {"Observation": "observations", "Condition": "conditions", "MedicationStatement": "medications"}
    typed_got: set = set()
    typed_dup = 0
    for t in typed_kinds.values():
        if not glob.glob(f"{lake}/{t}/*/*/*/*.parquet"):
            continue
        trows = con.execute(f"SELECT patient_key, commit_id, fact_id FROM {table(t)}").fetchall()
        tc = collections.Counter(trows)
        typed_dup += sum(n - 1 for n in tc.values() if n > 1)
        typed_got |= {(member_of[pk], f) for pk, _, f in trows if pk in member_of}
    typed_want = {(m, fid) for m, fs in got_facts.items() for fid, f in fs.items() if f["type"] in typed_kinds}
    rows.append(["lake typed tables: rows repeating a (commit, fact) pair", typed_dup, 0])
    rows.append(["lake typed tables: distinct facts of batch members", len(typed_got), len(typed_want)])
    rows.append(["lake typed tables: facts that are not the graph's", len(typed_got ^ typed_want), 0])

    # No half-written lake batch: every Parquet file is named by a committed ledger entry and
    # every file a committed entry names exists.
    named = set()
    for path in glob.glob(os.path.join(lake, "_ledger", "*.json")):
        entry = json.load(open(path))
        if entry["state"] == "committed":
            named |= set(entry["files"])
    files = {os.path.relpath(p, objects) for p in glob.glob(os.path.join(lake, "*", "*", "*", "*", "*.parquet"))}
    rows.append(["lake files no committed ledger entry names (orphans of a cut flush)", len(files - named), 0])
    rows.append(["lake files a committed ledger entry names that are missing", len(named - files), 0])
    json.dump({"rows": rows, "notes": notes}, open(out, "w"))


def main() -> int:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "probe":
        probe(*args)
        return 0
    if cmd == "wait-mid-batch":
        return wait_mid_batch(args[0], args[1], float(args[2]))
    if cmd == "kill-in-flush":
        return kill_in_flush(args[0], args[1], int(args[2]), float(args[3]))
    if cmd == "read-graph":
        read_graph(*args)
        return 0
    if cmd == "check":
        check(args[0], args[1], args[2], args[3], args[4:])
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
