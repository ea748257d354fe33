#!/usr/bin/env python3
"""Compares two CPU OCR engines on a fixture set of document page images.

Engines
  tesseract  the Tesseract CLI (`tesseract IMG stdout`, eng, default psm 3), one process per
             page, OMP_THREAD_LIMIT=1 - the reference the team compares against.
  ppocr      PP-OCR text detection + recognition through ONNX Runtime on the CPU, as packaged
             by `rapidocr_onnxruntime` (the ONNX models ship inside its wheel, nothing is
             downloaded at run time). One engine per worker process, loaded once, every ONNX
             Runtime session limited to 1 intra-op and 1 inter-op thread. RapidOCR's defaults
             otherwise, except that the 0/180-degree line classifier is off (next entry).
  ppocr-cls  the same with RapidOCR's full default pipeline, i.e. with the 0/180-degree text-line
             direction classifier between detection and recognition. On upright pages it can
             only hurt: it flips some long lines wrongly, and those come back empty.

Usage
    python3 scripts/ocr-compare.py SET_DIR [--jobs 2] [--out results.json]
            [--engines tesseract,ppocr,ppocr-cls] [--save-text DIR] [--limit N]

SET_DIR holds manifest.csv (id,image,...,level,...), DOC.truth.json and, where present,
DOC.txt (the exact clean text of the page). When a ppocr engine is asked for and
`rapidocr_onnxruntime` cannot be imported, the script re-runs itself under the venv
~/.cache/p360/ocr-compare-venv (override with --venv), creating it first with
`python3 -m venv` + `pip install rapidocr_onnxruntime==1.4.4` if it does not exist.
The same can be done by hand:

    python3 -m venv ~/.cache/p360/ocr-compare-venv
    ~/.cache/p360/ocr-compare-venv/bin/pip install rapidocr_onnxruntime==1.4.4
    ~/.cache/p360/ocr-compare-venv/bin/python scripts/ocr-compare.py SET_DIR

Metrics (per degradation level and overall; counts are summed over documents, then divided)
  lab value recall  share of truth lab results whose `value_text` is a token of the raw OCR
                    text. Tokens are whitespace-separated after NFKC normalisation, with
                    surrounding punctuation stripped (but `<` / `>` kept, and "< 0.01" joined to
                    "<0.01"); a value glued to a flag also counts (`102L`, `102*H`, `5.5(H)`).
                    A presence test: it is an upper bound on what an extractor could read.
  lab name recall   share of truth lab results whose analyte `name` first word (lowercased,
                    punctuation stripped: "Glucose, Serum" -> "glucose") is a token of the text.
  word recall       share of DOC.txt words (lowercased, surrounding punctuation stripped,
                    length >= 2) found in the OCR word multiset (each OCR word used once).
                    "n/a" where the set has no DOC.txt.
  pages/s           the whole set run with --jobs worker processes at once (one per core), one
                    engine at a time: overall = pages / wall-clock seconds. Per level, where
                    no separate wall clock exists, it is jobs / mean per-page latency of that
                    level's pages measured during the same run.

The JSON output (--out) also has per-document figures, substring-based diagnostics (value or
name found anywhere in the text, e.g. when PP-OCR glues words together), medication-name
recall, CPU seconds used, load average before each run, and the exact versions and models.
Timings are only meaningful on an otherwise idle machine: the script warns when the 1-minute
load average is above 0.5 before a run.
"""
import argparse
import collections
import csv
import hashlib
import json
import multiprocessing
import os
import pathlib
import re
import resource
import string
import subprocess
import sys
import time
import unicodedata

RAPIDOCR_PIN = "rapidocr_onnxruntime==1.4.4"
DEFAULT_VENV = pathlib.Path.home() / ".cache" / "p360" / "ocr-compare-venv"
LEVEL_ORDER = ["clean", "scan", "photo_mild", "photo_strong"]
# Environment for every OCR process: one thread each, so that --jobs workers use --jobs cores.
ONE_THREAD_ENV = {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "MKL_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- runtime set-up

def ensure_ppocr_runtime(venv: pathlib.Path) -> None:
    """Makes `rapidocr_onnxruntime` importable, re-executing this script under the venv."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    py = venv / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == venv.resolve():  # already in it: do not loop
        sys.exit(f"rapidocr_onnxruntime is missing from the venv {venv}: "
                 f"run {venv}/bin/pip install {RAPIDOCR_PIN}")
    if not py.exists():
        print(f"creating venv {venv} with {RAPIDOCR_PIN} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", RAPIDOCR_PIN], check=True)
    os.execv(str(py), [str(py), os.path.abspath(__file__)] + sys.argv[1:])


# --------------------------------------------------------------------------- the fixture set

def load_set(set_dir: pathlib.Path, limit: int | None):
    docs = []
    with open(set_dir / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            truth = json.loads((set_dir / f"{row['id']}.truth.json").read_text())
            txt = set_dir / f"{row['id']}.txt"
            docs.append({
                "id": row["id"],
                "image": str(set_dir / row["image"]),
                "level": row["level"],
                "truth": truth,
                "text": txt.read_text() if txt.exists() else None,
            })
    return docs[:limit] if limit else docs


# --------------------------------------------------------------------------- engines
# Each engine is a pair (init, read): init runs once in each worker process, read(image path)
# returns the raw page text. Workers are forked, so the globals below are per worker.

_PPOCR = None


def tesseract_init():
    pass


def tesseract_read(image: str) -> str:
    env = dict(os.environ, **ONE_THREAD_ENV)
    out = subprocess.run(["tesseract", image, "stdout", "-l", "eng"], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout


def ppocr_init(use_cls: bool = False):
    global _PPOCR
    import cv2
    cv2.setNumThreads(1)  # keep OpenCV's resize / warp from starting its own thread pool
    from rapidocr_onnxruntime import RapidOCR
    # The Global thread settings are copied into the Det, Cls and Rec sessions by RapidOCR.
    _PPOCR = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, use_cls=use_cls)


def ppocr_read(image: str) -> str:
    result, _elapsed = _PPOCR(image)
    return boxes_to_text(result or [])


def boxes_to_text(result) -> str:
    """Orders PP-OCR's text boxes into lines (top to bottom, then left to right).

    Boxes whose vertical centres are within half a box height of a line's join that line; the
    boxes of one line are separated by a space, so separate boxes always give separate tokens.
    Two-column pages get their columns mixed on one line, which does not matter to the metrics.
    """
    items = []
    for box, text, _score in result:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text))
    items.sort()
    lines = []  # each: [centre y, height, [(x, text), ...]]
    for yc, h, x, text in items:
        if lines and abs(yc - lines[-1][0]) < 0.5 * min(h, lines[-1][1]):
            lines[-1][2].append((x, text))
        else:
            lines.append([yc, h, [(x, text)]])
    return "\n".join(" ".join(t for _, t in sorted(parts)) for _, _, parts in lines) + "\n"


ENGINES = {
    "tesseract": (tesseract_init, tesseract_read),
    "ppocr": (ppocr_init, ppocr_read),
    "ppocr-cls": (lambda: ppocr_init(use_cls=True), ppocr_read),
}

_READ = None


def _worker_init(engine: str):
    global _READ
    os.environ.update(ONE_THREAD_ENV)
    init, _READ = ENGINES[engine]
    init()


def _worker_page(doc_id_and_image):
    doc_id, image = doc_id_and_image
    t0 = time.perf_counter()
    text = _READ(image)
    return doc_id, text, time.perf_counter() - t0


def run_engine(engine: str, docs, jobs: int):
    """Reads every page with `jobs` worker processes; returns texts, latencies and timings."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the {engine} run: timings are "
              f"disturbed by other work on this machine", file=sys.stderr)
    ctx = multiprocessing.get_context("fork")
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    texts, latency = {}, {}
    with ctx.Pool(jobs, initializer=_worker_init, initargs=(engine,)) as pool:
        work = [(d["id"], d["image"]) for d in docs]
        for i, (doc_id, text, seconds) in enumerate(
                pool.imap_unordered(_worker_page, work, chunksize=1), 1):
            texts[doc_id], latency[doc_id] = text, seconds
            print(f"\r{engine}: {i}/{len(docs)}", end="", file=sys.stderr, flush=True)
        pool.close()
        pool.join()  # reaping the workers adds their (and tesseract's) CPU time to ours
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"\r{engine}: {len(docs)} pages in {wall:.1f} s", file=sys.stderr)
    return texts, latency, {"wall_s": wall, "cpu_s": cpu, "loadavg_before": load,
                            "cpu_utilisation": cpu / (wall * jobs)}


# --------------------------------------------------------------------------- metrics

ALL_PUNCT = string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2022\u00b7"
VALUE_PUNCT = ALL_PUNCT.replace("<", "").replace(">", "")
FLAG_SUFFIX = r"(\*?\(?(h|l|hh|ll|high|low)\)?\*?)?"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"([<>])\s+(?=[\d.])", r"\1", text)  # "< 0.01" -> "<0.01"


def words(text: str, strip: str = ALL_PUNCT):
    out = []
    for tok in normalise(text).split():
        tok = tok.strip(strip).lower()
        if tok:
            out.append(tok)
    return out


def value_found(value: str, value_tokens: set) -> bool:
    v = normalise(value).strip().lower()
    if v in value_tokens:
        return True
    pattern = re.compile(r"\*?" + re.escape(v) + FLAG_SUFFIX)
    return any(pattern.fullmatch(t) for t in value_tokens if v in t)


def value_in_substring(value: str, text_lower: str) -> bool:
    v = re.escape(normalise(value).strip().lower())
    return re.search(r"(?<![\d.])" + v + r"(?![\d])", text_lower) is not None


def name_key(name: str) -> str:
    first = normalise(name).split()[0]
    return first.strip(ALL_PUNCT).lower()


def score_doc(doc, ocr_text: str) -> dict:
    truth = doc["truth"]
    value_tokens = set(words(ocr_text, VALUE_PUNCT))
    name_tokens = set(words(ocr_text))
    text_lower = normalise(ocr_text).lower()
    labs = truth.get("labs") or []
    s = collections.Counter()
    s["labs"] = len(labs)
    for lab in labs:
        s["value_tok"] += value_found(lab["value_text"], value_tokens)
        s["value_sub"] += value_in_substring(lab["value_text"], text_lower)
        key = name_key(lab["name"])
        s["name_tok"] += key in name_tokens
        s["name_sub"] += key in text_lower
    meds = truth.get("medications") or []
    s["meds"] = len(meds)
    s["med_tok"] = sum(m["name"].split()[0].lower() in name_tokens for m in meds)
    if doc["text"] is not None:
        ref = collections.Counter(w for w in words(doc["text"]) if len(w) >= 2)
        got = collections.Counter(words(ocr_text))
        s["words"] = sum(ref.values())
        s["words_found"] = sum(min(n, got[w]) for w, n in ref.items())
    return dict(s)


def aggregate(rows, jobs: int) -> dict:
    total = collections.Counter()
    for r in rows:
        total.update(r["score"])
    has_text = all("words" in r["score"] for r in rows)
    mean_latency = sum(r["seconds"] for r in rows) / len(rows)
    return {
        "docs": len(rows),
        "counts": dict(total),
        "lab_value_recall": ratio(total["value_tok"], total["labs"]),
        "lab_name_recall": ratio(total["name_tok"], total["labs"]),
        "word_recall": ratio(total["words_found"], total["words"]) if has_text else None,
        "lab_value_substring_recall": ratio(total["value_sub"], total["labs"]),
        "lab_name_substring_recall": ratio(total["name_sub"], total["labs"]),
        "medication_name_recall": ratio(total["med_tok"], total["meds"]),
        "mean_page_latency_s": mean_latency,
        "pages_per_s_from_latency": jobs / mean_latency,
    }


def ratio(num, den):
    return num / den if den else None


# --------------------------------------------------------------------------- versions

def sha256_short(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()[:16]


def versions(engines) -> dict:
    out = {"python": sys.version.split()[0]}
    if "tesseract" in engines:
        v = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        out["tesseract"] = (v.stdout + v.stderr).splitlines()[0]
        for d in ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                  os.environ.get("TESSDATA_PREFIX", "")):
            f = pathlib.Path(d) / "eng.traineddata"
            if d and f.exists():
                out["tesseract_eng_traineddata"] = {"path": str(f), "bytes": f.stat().st_size,
                                                    "sha256_16": sha256_short(f)}
                break
    if any(e.startswith("ppocr") for e in engines):
        from importlib import metadata
        import yaml  # a dependency of rapidocr_onnxruntime
        for pkg in ("rapidocr_onnxruntime", "onnxruntime", "opencv-python",
                    "opencv-python-headless", "numpy"):
            try:
                out[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                pass
        pkg_dir = pathlib.Path(metadata.distribution("rapidocr_onnxruntime")
                               .locate_file("rapidocr_onnxruntime"))
        cfg = yaml.safe_load((pkg_dir / "config.yaml").read_text())
        out["ppocr_models"] = {
            stage: {"file": pathlib.Path(cfg[stage]["model_path"]).name,
                    "sha256_16": sha256_short(pkg_dir / cfg[stage]["model_path"])}
            for stage in ("Det", "Cls", "Rec")}
    return out


# --------------------------------------------------------------------------- report

def fmt_ratio(agg, key, num, den):
    if agg[key] is None:
        return "n/a"
    c = agg["counts"]
    return f"{agg[key]:.3f} ({c.get(num, 0)}/{c.get(den, 0)})"


def markdown_table(summary) -> str:
    lines = ["| engine | level | docs | lab value recall | lab name recall | word recall | pages/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for engine, by_level in summary.items():
        for level, agg in by_level.items():
            pps = agg["pages_per_s"] if level == "overall" else agg["pages_per_s_from_latency"]
            lines.append(" | ".join([
                f"| {engine}", f"**{level}**" if level == "overall" else level, str(agg["docs"]),
                fmt_ratio(agg, "lab_value_recall", "value_tok", "labs"),
                fmt_ratio(agg, "lab_name_recall", "name_tok", "labs"),
                fmt_ratio(agg, "word_recall", "words_found", "words"),
                f"{pps:.3f}"]) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set_dir", type=pathlib.Path)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one per core)")
    ap.add_argument("--out", type=pathlib.Path, help="write the full results as JSON here")
    ap.add_argument("--engines", default="tesseract,ppocr,ppocr-cls",
                    help="comma-separated, run one after the other: " + ", ".join(ENGINES))
    ap.add_argument("--save-text", type=pathlib.Path, help="keep each engine's raw text here")
    ap.add_argument("--limit", type=int, help="only the first N documents (a quick check)")
    ap.add_argument("--venv", type=pathlib.Path, default=DEFAULT_VENV)
    args = ap.parse_args()

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        sys.exit(f"unknown engine(s): {', '.join(sorted(unknown))}")
    if any(e.startswith("ppocr") for e in engines):
        ensure_ppocr_runtime(args.venv)

    docs = load_set(args.set_dir, args.limit)
    levels = sorted({d["level"] for d in docs},
                    key=lambda lv: (LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 99, lv))
    summary, per_doc, runs = {}, {}, {}
    for engine in engines:
        texts, latency, run = run_engine(engine, docs, args.jobs)
        run["pages_per_s"] = len(docs) / run["wall_s"]
        runs[engine] = run
        if args.save_text:
            out_dir = args.save_text / engine
            out_dir.mkdir(parents=True, exist_ok=True)
            for doc_id, text in texts.items():
                (out_dir / f"{doc_id}.txt").write_text(text)
        rows = [{"id": d["id"], "level": d["level"], "seconds": latency[d["id"]],
                 "score": score_doc(d, texts[d["id"]])} for d in docs]
        per_doc[engine] = rows
        summary[engine] = {lv: aggregate([r for r in rows if r["level"] == lv], args.jobs)
                           for lv in levels}
        summary[engine]["overall"] = aggregate(rows, args.jobs)
        summary[engine]["overall"]["pages_per_s"] = run["pages_per_s"]

    print(markdown_table(summary))
    print(f"\npages/s: overall = {len(docs)} pages / wall clock with {args.jobs} workers; "
          f"per level = {args.jobs} / mean page latency in that run.")
    for engine, run in runs.items():
        print(f"{engine}: wall {run['wall_s']:.1f} s, CPU {run['cpu_s']:.1f} s "
              f"= {run['cpu_s'] / len(docs):.2f} CPU s/page "
              f"({100 * run['cpu_utilisation']:.0f}% of {args.jobs} cores), "
              f"load average before {run['loadavg_before']:.2f}")
    if args.out:
        args.out.write_text(json.dumps({
            "set_dir": str(args.set_dir), "jobs": args.jobs, "cpu_count": os.cpu_count(),
            "versions": versions(engines), "runs": runs, "summary": summary,
            "per_doc": per_doc}, indent=2) + "\n")


if __name__ == "__main__":
    main()
