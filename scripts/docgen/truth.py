"""Ground truth (format patient360-document-truth/1) from a rendered document,
and the check that every fact in it is printed on a readable page."""
from __future__ import annotations

from . import catalog as C
from . import content as K

SCHEMA = "patient360-document-truth/1"


def lab_truth(r, doc_type, multipage, page):
    t = {k: r[k] for k in ("name", "analyte", "loinc", "value", "value_text", "unit", "ucum", "ref_low", "ref_high",
                           "ref_text", "flag")}
    if doc_type == "lab_report" and "panel" in r:
        t["panel"] = r["panel"]
    if "date" in r:
        t["date"] = r["date"]
    if multipage:
        t["page"] = page
    return t


def med_truth(m, multipage, page):
    t = {"name": m["name"], "strength": m["strength"], "sig": m["sig"], "form": m["form"]}
    if m.get("brand"):
        t["brand"] = m["brand"]
    if multipage:
        t["page"] = page
    return t


def build(d, R, image, degradation, render, split, seed, corrupt_pages=()):
    pages = len(R.pages)
    multipage = pages > 1
    readable = lambda it: R.page_items.get(id(it), 1) not in corrupt_pages
    page = lambda it: R.page_items.get(id(it), 1)
    p = d.patient
    given = [p["given"]] + ([p["middle_printed"]] if p["middle_printed"] else [])
    name = " ".join([p["given"]] + ([p["middle_printed"] + "."] if p["middle_printed"] else []) + [p["family"]])
    pr = d.provider
    t = {
        "schema": SCHEMA,
        "id": d.id,
        "image": image,
        "doc_type": d.doc_type,
        "doc_form": {"lab_letter": "letter", "visit_letter": "letter", "cumulative": "cumulative"}.get(d.form, "report"),
        "patient": {"name": name, "family": p["family"], "given": given, "birth_date": p["dob"].isoformat(),
                    "sex": d.sex, "mrn": p["mrn"], "name_as_printed": p["name_as_printed"]},
        "date": d.date.isoformat(),
        "date_kind": d.date_kind,
    }
    if d.doc_type == "discharge_summary":
        t["date_alternates"] = [d.admit.isoformat()]
    t["provider"] = {"name": f"{pr['given']} {pr['family']}", "family": pr["family"], "given": pr["given"],
                     "credential": pr["credential"], "as_printed": pr["as_printed"]}
    t["lab"] = d.lab if d.doc_type == "lab_report" else None
    t["organization"] = d.org
    t["labs"] = [lab_truth(r, d.doc_type, multipage, page(r)) for r in d.labs if readable(r)]
    conds = []
    for e in d.conditions:
        if not readable(e):
            continue
        c = {"text": e["text"], "icd10cm": e["code"], "code_printed": e["code_printed"]}
        if multipage:
            c["page"] = page(e)
        conds.append(c)
        if e.get("bmi_code"):
            z = {"text": C.BMI_DESC[e["bmi_code"]], "icd10cm": e["bmi_code"], "code_printed": True}
            if multipage:
                z["page"] = page(e)
            conds.append(z)
    t["conditions"] = conds
    t["negated"] = [dict(m, **({"page": page(m)} if multipage else {})) for m in d.mentions if readable(m)]
    t["medications"] = [med_truth(m, multipage, page(m)) for m in d.meds if readable(m)]
    stopped = [med_truth(m, multipage, page(m)) for m in d.meds_stopped if readable(m)]
    if stopped or d.doc_type in ("medication_list", "discharge_summary"):
        t["medications_stopped"] = stopped
    if d.allergies:
        t["allergies"] = list(d.allergies)
    t["pages"] = pages
    if corrupt_pages or degradation.get("level") == "pdf_multipage":
        t["corrupt_pages"] = sorted(corrupt_pages)
    t["degradation"] = degradation
    t["render"] = render
    t["generator"] = {"name": "scripts/docgen", "split": split, "seed": seed}
    return t


def check(t, d, R, corrupt_pages=()):
    """Every fact of the truth must be drawn on a readable page; returns a list of problems."""
    texts = {i + 1: " ".join(cv.log) for i, cv in enumerate(R.pages)}
    hand = " ".join(v for cv in R.pages for v in cv.hand_log)
    allt = " ".join(texts[i] for i in texts if i not in corrupt_pages) + " " + hand
    probs = []

    def need(s, what, where=None, ci=False):
        hay = texts.get(where, "") + " " + hand if where else allt
        if ci:
            s, hay = (s or "").lower(), hay.lower()
        if s and s not in hay:
            probs.append(f"{what}: {s!r} not printed")

    pg = lambda it: it.get("page")
    for lab in t["labs"]:
        need(lab["name"] if d.layout != "printout" else lab["name"].upper(), "lab name", pg(lab))
        need(lab["value_text"], "value", pg(lab))
        need(lab["unit"], "unit", pg(lab))
        need(lab["ref_text"], "ref", pg(lab))
        # flag consistency
        kind_ok = lab["flag"] in ("", "H", "L", "A")
        if not kind_ok:
            probs.append(f"bad flag {lab['flag']}")
    for c in t["conditions"]:
        if c["icd10cm"].startswith("Z68"):
            need(c["icd10cm"], "bmi code", pg(c))
            continue
        need(c["text"], "condition", pg(c))
        if c["code_printed"]:
            need(c["icd10cm"], "condition code", pg(c))
    for n in t["negated"]:
        need(n["text"], "mention", pg(n), ci=True)
    for m in t["medications"] + t.get("medications_stopped", []):
        need(m["strength"], "strength", pg(m))
        need(m["sig"], "sig", pg(m))
        need(m.get("brand") or m["name"].split("-")[0], "med name", pg(m))
    p = t["patient"]
    need(p["name_as_printed"], "patient name", 1)
    need(p["mrn"], "mrn", 1, ci=True)
    need(t["provider"]["as_printed"], "provider", 1)
    dob = K.dfmt(d, d.patient["dob"], birth=True)
    need(dob, "dob", 1, ci=True)
    main = K.dfmt(d, d.date)
    need(main, "date", 1, ci=True)
    return probs
