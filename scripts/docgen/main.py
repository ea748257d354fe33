"""Command line: python -m docgen OUT_DIR --count 40 --seed 1001 [--split dev|holdout]"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import random
import sys

from . import catalog as C
from . import content as K
from . import degrade as G
from . import fonts
from . import layouts as LY
from . import truth as T
from . import variants as V
from .canvas import Overflow

FORM_QUOTA = [("lab", 12), ("lab_letter", 3), ("cumulative", 4), ("visit", 8), ("visit_letter", 2), ("medlist", 5),
              ("discharge", 6)]
LEVEL_QUOTA = {
    "dev": [("clean", 8), ("scan", 5), ("scan_fax", 2), ("photo_mild", 6), ("photo_strong", 6),
            ("scan_upside_down", 2), ("photo_sideways", 2), ("photo_curl", 2), ("photo_glare", 2), ("scan_lowres", 2),
            ("pdf_multipage", 3)],
    "holdout": [("clean", 6), ("scan", 5), ("scan_fax", 2), ("photo_mild", 5), ("photo_strong", 6),
                ("scan_upside_down", 2), ("photo_sideways", 2), ("photo_curl", 2), ("photo_glare", 2),
                ("scan_lowres", 2), ("pdf_multipage", 3), ("photo_folded", 3)],
}
# the three PDF documents: (form, pages, corrupt page)
PDF_DOCS = [("discharge", 3, None), ("lab", 2, 2), ("visit", 2, None)]


def scaled(quota, n):
    tot = sum(q for _, q in quota)
    out = [(k, int(q * n / tot)) for k, q in quota]
    rest = n - sum(q for _, q in out)
    i = 0
    while rest > 0:
        k, q = out[i % len(out)]
        out[i % len(out)] = (k, q + 1)
        rest -= 1
        i += 1
    return [k for k, q in out for _ in range(q)]


def plan(count, seed, split):
    rng = random.Random(f"docgen:{seed}:{split}:plan")
    forms = scaled(FORM_QUOTA, count)
    levels = scaled(LEVEL_QUOTA[split], count)
    rng.shuffle(forms)
    rng.shuffle(levels)
    specs = [dict(form=f, level=l) for f, l in zip(forms, levels)]
    # the multi-page PDFs: give them their forms
    pdf_idx = [i for i, s in enumerate(specs) if s["level"] == "pdf_multipage"]
    for j, i in enumerate(pdf_idx):
        form, pages, corrupt = PDF_DOCS[j % len(PDF_DOCS)]
        # swap forms with some other document so the form quota is kept
        k = next((k for k, s in enumerate(specs) if s["form"] == form and s["level"] != "pdf_multipage"), None)
        if k is not None:
            specs[k]["form"], specs[i]["form"] = specs[i]["form"], form
        specs[i].update(form=form, pages=pages, corrupt=corrupt)
    # folded documents are letters where possible (a letter folded in three)
    for i, s in enumerate(specs):
        if s["level"] == "photo_folded" and s["form"] not in ("lab_letter", "visit_letter"):
            k = next((k for k, t in enumerate(specs) if t["form"] in ("lab_letter", "visit_letter")
                      and t["level"] not in ("photo_folded", "pdf_multipage")), None)
            if k is not None:
                specs[k]["form"], s["form"] = s["form"], specs[k]["form"]
    # layouts: least used allowed family first
    used = collections.Counter()
    for s in specs:
        allowed = [l for l in LY.ALLOWED[s["form"]] if split == "holdout" or l not in V.RESERVED_LAYOUTS]
        if s.get("pages", 1) > 1:
            allowed = [l for l in allowed if l in LY.MULTIPAGE] or allowed
        if s["level"] == "scan_lowres":
            allowed = [l for l in allowed if l != "sidepanel"] or allowed
        rng.shuffle(allowed)
        weight = lambda l: used[l] - (1.5 if split == "holdout" and l in V.RESERVED_LAYOUTS else 0)
        s["layout"] = min(allowed, key=weight)
        used[s["layout"]] += 1
    # fonts: a shuffled cycle; in the holdout the reserved fonts are placed first
    fam = fonts.families(split)
    rng.shuffle(fam)
    if split == "holdout":
        res = sorted(fonts.HOLDOUT_ONLY)
        fam = res + [f for f in fam if f not in res] + res
    for i, s in enumerate(specs):
        s["font"] = fam[i % len(fam)]
        s["hand"] = rng.random() < 0.25 and s["level"] not in ("scan_fax",)
        s["base_pt"] = rng.choice([8.5, 9.0, 9.5, 9.5, 10.0, 10.0, 10.5, 11.0, 11.5])
        if s["level"] == "scan_lowres":
            s["base_pt"] = max(s["base_pt"], 10.5)
    prefix = {"dev": "dev", "holdout": "hold"}[split]
    for i, s in enumerate(specs):
        s["id"] = f"{prefix}_{i + 1:03d}"
        s["index"] = i
    return specs


def trim(d):
    """Remove some content so the document fits its page(s)."""
    if len(d.panels) > 1:
        d.panels.pop()
        d.labs = [r for _, rs in d.panels for r in rs]
        return True
    if d.form == "cumulative":
        if len(d.cum_rows) > 2:
            row = d.cum_rows.pop()
            d.labs = [r for r in d.labs if r not in row["cells"].values()]
            d.panels = [(d.cum_title, d.labs)]
            return True
        return False
    if d.doc_type == "lab_report":
        if len(d.labs) > 4:
            h, rs = d.panels[0]
            rs = rs[: int(len(rs) * 0.75)]
            d.panels = [(h, rs)]
            d.labs = rs
            return True
        return False
    if d.labs:
        d.labs, d.panels = [], []
        return True
    if len(d.meds) > 3:
        d.meds.pop()
        return True
    if len(d.meds_stopped) > 1:
        d.meds_stopped.pop()
        return True
    if len(d.conditions) > 2:
        e = d.conditions.pop()
        d.cond_codes = [c for c in d.cond_codes if c not in (e["code"], e.get("bmi_code"))]
        return True
    if len(d.mentions) > 2:
        return False
    return False


def generate_one(spec, seed, split):
    rng = random.Random(f"docgen:{seed}:{split}:{spec['index']}")
    d = K.build(rng, split, spec)
    group, (dlo, dhi) = G.LEVELS[spec["level"]]
    dpi = rng.randrange(dlo, dhi + 1, 5) if dhi > dlo else dlo
    base = spec["base_pt"]
    attempts = 0
    while True:
        attempts += 1
        try:
            pages, R = LY.render(d, rng, dpi, base)
            break
        except Overflow:
            if base > 8.0 + 1e-9 and attempts < 8:
                base -= 0.5
                continue
            if not trim(d) or attempts > 40:
                raise
    corrupt = [spec["corrupt"]] if spec.get("corrupt") and spec["corrupt"] <= len(pages) else []
    level = spec["level"]
    if level == "pdf_multipage":
        data, ext, deg = G.pdf([cv.img for cv in pages], rng, dpi, d.date, corrupt[0] if corrupt else None)
    else:
        if len(pages) != 1:
            raise RuntimeError(f"{d.id}: {len(pages)} pages for a single image")
        img = pages[0].img
        if level == "clean":
            data, ext, deg = G.clean(img, rng, dpi)
        elif level.startswith("scan"):
            data, ext, deg = G.scan(img, rng, dpi, level)
        else:
            data, ext, deg = G.photo(img, rng, level, dpi)
    image = f"{d.id}.{ext}"
    render = {"layout": d.layout, "font": d.font, "base_pt": base, "render_dpi": dpi,
              "page_size": LY.page_of(d.layout), "handwritten_fields": list(d.hand),
              "handwriting_style": d.hand_style, "features": sorted(R.features)}
    if R.forced_breaks:
        render["features"].append("page_breaks_at_sections")
    t = T.build(d, R, image, deg, render, split, seed, corrupt)
    probs = T.check(t, d, R, corrupt)
    probs += [f"page {i}: footer off the page" for i, cv in enumerate(R.pages, 1) if not cv.footer_drawn]
    if probs and os.environ.get("DOCGEN_DEBUG"):
        dbg = os.environ["DOCGEN_DEBUG"]
        os.makedirs(dbg, exist_ok=True)
        for i, cv in enumerate(R.pages, 1):
            cv.img.save(os.path.join(dbg, f"{d.id}_p{i}.png"))
        with open(os.path.join(dbg, f"{d.id}.log.txt"), "w") as f:
            f.write("\n".join(l for cv in R.pages for l in cv.log))
    if probs:
        raise RuntimeError(f"{d.id}: truth not on the page: {probs[:6]}")
    txt = []
    for i, cv in enumerate(R.pages, 1):
        if len(R.pages) > 1:
            txt.append(f"----- page {i} of {len(R.pages)} -----")
        if i in corrupt:
            txt.append(f"[page {i}: image data corrupt - nothing readable]")
            continue
        txt.extend(cv.log)
    return t, data, "\n".join(txt) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m docgen", description=__doc__)
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1001)
    ap.add_argument("--split", choices=["dev", "holdout"], default="dev")
    ap.add_argument("--only", help="comma-separated document numbers (1-based) to generate, for debugging")
    ap.add_argument("--check-codes", action="store_true", help="validate the ICD-10-CM codes with simple-icd-10-cm")
    a = ap.parse_args(argv)
    if a.check_codes:
        return check_codes()
    if not a.out_dir:
        ap.error("OUT_DIR is required")
    missing = fonts.check_all()
    if missing:
        raise SystemExit(f"missing font files: {missing}")
    os.makedirs(a.out_dir, exist_ok=True)
    specs = plan(a.count, a.seed, a.split)
    only = {int(x) for x in a.only.split(",")} if a.only else None
    rows = []
    for s in specs:
        if only and s["index"] + 1 not in only:
            continue
        t, data, txt = generate_one(s, a.seed, a.split)
        with open(os.path.join(a.out_dir, t["image"]), "wb") as f:
            f.write(data)
        with open(os.path.join(a.out_dir, t["id"] + ".truth.json"), "w", encoding="utf-8") as f:
            json.dump(t, f, indent=1, ensure_ascii=False)
            f.write("\n")
        with open(os.path.join(a.out_dir, t["id"] + ".txt"), "w", encoding="utf-8") as f:
            f.write(txt)
        deg = t["degradation"]
        rows.append([t["id"], t["image"], t["doc_type"], deg["group"], deg["level"], t["render"]["layout"],
                     t["render"]["font"], len(t["labs"]), len(t["conditions"]), len(t["negated"]),
                     len(t["medications"])])
        print(f"{t['id']}  {t['doc_type']:<18} {t['doc_form']:<10} {deg['level']:<17} {t['render']['layout']:<10} "
              f"{t['render']['font']:<22} {len(data) // 1024:>4} KB", flush=True)
    if not only:
        with open(os.path.join(a.out_dir, "manifest.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "image", "doc_type", "group", "level", "layout", "font", "labs", "conditions", "negated",
                        "medications"])
            w.writerows(rows)
    return 0


def check_codes():
    import simple_icd_10_cm as cm
    bad = []
    codes = set(C.CONDITIONS) | set(C.BMI_DESC)
    codes |= {c for _, c, _ in C.SYMPTOMS} | {c for _, _, c, _ in C.RULED_OUT} | {c for _, c, _ in C.NO_HISTORY}
    codes |= {c for _, c in C.FAMILY} | {c for _, _, c in C.HYPOTHETICAL} | {c for _, _, c in C.HISTORICAL}
    for _, _, _, also in C.RULED_OUT:
        codes |= set(also)
    for _, _, also in C.NO_HISTORY + C.SYMPTOMS:
        codes |= set(also)
    for c in sorted(codes):
        if not cm.is_valid_item(c) or not cm.is_leaf(c):
            bad.append(f"{c}: not a valid billable code")
    for c, (desc, _) in C.CONDITIONS.items():
        if cm.is_valid_item(c) and cm.get_description(c) != desc:
            bad.append(f"{c}: description {desc!r} != {cm.get_description(c)!r}")
    for c, desc in C.BMI_DESC.items():
        if cm.is_valid_item(c) and cm.get_description(c) != desc:
            bad.append(f"{c}: description {desc!r} != {cm.get_description(c)!r}")
    print(f"{len(codes)} ICD-10-CM codes checked, {len(bad)} problems")
    for b in bad:
        print("  " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
