#!/usr/bin/env python3
"""The reference scorer's table, aggregated by page layout family instead of degradation.

Uses score.py's own functions unchanged (per-document counters summed per `layout` of the
truth file), so every figure means what the scorer means by it.

    python3 by_layout.py TRUTH_DIR OUTPUT_DIR [--json FILE]
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402


def layout(truth):
    """The layout family: `render.layout` in the shared sets, `layout` at the top in ours."""
    return str((truth.get("render") or {}).get("layout") or truth.get("layout") or "?")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("truth_dir")
    ap.add_argument("output_dir")
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    truths = score.load_truth(args.truth_dir)
    bundles = score.load_bundles(args.output_dir, truths)
    _, per_doc, missing = score.score_all(truths, bundles)
    groups = collections.OrderedDict([("ALL", collections.Counter())])
    for stem in sorted(per_doc, key=lambda s: (layout(truths[s]), s)):
        groups["ALL"].update(per_doc[stem])
        groups.setdefault("layout " + layout(truths[stem]), collections.Counter()).update(per_doc[stem])
    rows = [(k, score.summarize(c)) for k, c in groups.items()]
    score.print_report(rows, missing, len(truths))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: m for k, m in rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
