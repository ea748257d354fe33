#!/usr/bin/env python3
"""Scores `p360 extract` output against ground truth (`*.truth.json`, format in the fixtures'
README): labs on LOINC + value + unit, conditions on ICD-10-CM code, medications on ingredient,
header fields exactly; negated mentions emitted as active conditions counted separately.

    p360 extract ../shared/fixtures/documents --out /tmp/out
    scripts/score-extraction.py ../shared/fixtures/documents /tmp/out [--json]

Prints precision/recall/F1 per document type and per degradation group (clean vs photo).
Exits 0; the caller decides what figures are good enough.
"""
import collections
import json
import pathlib
import re
import sys


def norm_unit(u):
    return re.sub(r"\s+", "", (u or "").lower()).replace("µ", "u").replace("mcg", "ug")


def norm_code(c):
    return (c or "").replace(".", "").upper()


def norm_name(s):
    return " ".join(re.sub(r"[^a-z0-9]+", " ", (s or "").lower()).split())


def resources(bundle, kind):
    return [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == kind]


def codes(concept, system):
    return [c.get("code") for c in (concept or {}).get("coding", []) if c.get("system") == system]


def obs_values(o):
    """(loinc codes, value, units) of an Observation."""
    loincs = codes(o.get("code"), "http://loinc.org")
    if "valueQuantity" in o:
        q = o["valueQuantity"]
        value = q.get("value")
        if q.get("comparator"):
            value = f"{q['comparator']}{value}"
        units = {norm_unit(q.get("unit")), norm_unit(q.get("code"))} - {""}
    else:
        value, units = o.get("valueString"), set()
    return loincs, value, units


def same_value(truth, got):
    if isinstance(truth, (int, float)) and isinstance(got, (int, float)):
        return abs(truth - got) <= 1e-6
    return str(truth).replace(" ", "") == str(got).replace(" ", "")


def is_vital(o):
    return any(c.get("code") == "vital-signs" for cat in o.get("category", []) for c in cat.get("coding", []))


class Count:
    def __init__(self):
        self.tp = self.fp = self.fn = 0

    def add(self, tp, fp, fn):
        self.tp += tp; self.fp += fp; self.fn += fn

    def prf(self):
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def match(truth_items, got_items, eq):
    used, tp = set(), 0
    for t in truth_items:
        for i, g in enumerate(got_items):
            if i not in used and eq(t, g):
                used.add(i); tp += 1
                break
    return tp, len(got_items) - tp, len(truth_items) - tp


def score_doc(truth, bundle):
    out = {}
    obs = [o for o in resources(bundle, "Observation") if not is_vital(o)]
    got_labs = [obs_values(o) for o in obs]
    out["labs"] = match(truth["labs"], got_labs, lambda t, g: t["loinc"] in g[0] and same_value(t["value"], g[1])
                        and (not g[2] or bool({norm_unit(t["unit"]), norm_unit(t["ucum"])} & g[2])
                             or (not g[2] and isinstance(t["value"], str))))
    out["analytes"] = match(truth["labs"], got_labs, lambda t, g: t["loinc"] in g[0])
    active = [c for c in resources(bundle, "Condition")
              if not any(x.get("code") == "refuted" for x in (c.get("verificationStatus") or {}).get("coding", []))]
    got_codes = [norm_code(x) for c in active for x in codes(c.get("code"), "http://hl7.org/fhir/sid/icd-10-cm")[:1]]
    out["conditions"] = match(truth["conditions"], got_codes, lambda t, g: norm_code(t["icd10cm"]) == g)
    true_cats = {norm_code(c["icd10cm"])[:3] for c in truth["conditions"]}
    neg_errors = 0
    for n in truth.get("negated", []):
        cats = {norm_code(c)[:3] for c in [n["icd10cm"], *n.get("also", [])]} - true_cats
        if any(g[:3] in cats for g in got_codes):
            neg_errors += 1
    out["negated_emitted"] = neg_errors
    meds = [m for m in resources(bundle, "MedicationStatement") + resources(bundle, "MedicationRequest")
            if m.get("status") not in ("stopped", "completed", "entered-in-error")]
    def med_text(m):
        c = m.get("medicationCodeableConcept") or {}
        return norm_name(" ".join([c.get("text", "")] + [x.get("display", "") for x in c.get("coding", [])]))
    got_meds = [med_text(m) for m in meds]
    out["medications"] = match(truth["medications"], got_meds, lambda t, g: norm_name(t["name"]) in g)
    stopped_as_active = sum(1 for s in truth.get("medications_stopped", []) if any(norm_name(s["name"]) in g for g in got_meds))
    out["stopped_as_active"] = stopped_as_active
    # Header fields.
    fields = {}
    pats = resources(bundle, "Patient")
    name = (pats[0].get("name") or [{}])[0] if pats else {}
    tp = truth["patient"]
    fields["patient_family"] = norm_name(name.get("family")) == norm_name(tp["family"])
    fields["patient_given"] = [norm_name(g) for g in name.get("given", [])] == [norm_name(g) for g in tp["given"]]
    fields["birth_date"] = bool(pats) and pats[0].get("birthDate") == tp["birth_date"]
    ids = [i.get("value") for p in pats for i in p.get("identifier", [])]
    fields["mrn"] = tp["mrn"] in ids
    dates = [r.get("effectiveDateTime", "")[:10] for r in resources(bundle, "DiagnosticReport")]
    dates += [(r.get("period") or {}).get("end", "")[:10] for r in resources(bundle, "Encounter")]
    dates += [r.get("date", "")[:10] for r in resources(bundle, "Composition") + resources(bundle, "DocumentReference")]
    fields["date"] = truth["date"] in dates
    pr = truth.get("provider") or {}
    prac = [(p.get("name") or [{}])[0] for p in resources(bundle, "Practitioner")]
    fields["provider"] = any(norm_name(n.get("family")) == norm_name(pr.get("family"))
                             and norm_name(" ".join(n.get("given", []))).startswith(norm_name(pr.get("given"))) for n in prac)
    out["header"] = fields
    return out


def main():
    truth_dir, out_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    as_json = "--json" in sys.argv
    groups = collections.defaultdict(lambda: collections.defaultdict(Count))
    header = collections.defaultdict(lambda: [0, 0])
    negs = collections.Counter()
    per_doc = []
    for tf in sorted(truth_dir.glob("*.truth.json")):
        truth = json.loads(tf.read_text())
        stem = pathlib.Path(truth["image"]).stem
        bf = out_dir / f"{stem}.fhir.json"
        bundle = json.loads(bf.read_text()) if bf.exists() else {"entry": []}
        s = score_doc(truth, bundle)
        group = "photo" if truth["degradation"]["group"].startswith("photo") else "clean"
        for key in ("all", f"type:{truth['doc_type']}", f"group:{group}"):
            for k in ("labs", "analytes", "conditions", "medications"):
                groups[key][k].add(*s[k])
            for f, ok in s["header"].items():
                header[key][0] += ok; header[key][1] += 1
            negs[key] += s["negated_emitted"]
            negs[key + ":stopped"] += s["stopped_as_active"]
        per_doc.append({"id": truth["id"], "missing_output": not bf.exists(), **{k: s[k] for k in ("labs", "conditions", "medications", "negated_emitted")},
                        "header_wrong": [f for f, ok in s["header"].items() if not ok]})
    rows = []
    for key in sorted(groups, key=lambda k: (k != "all", k)):
        row = {"group": key}
        for k in ("labs", "analytes", "conditions", "medications"):
            c = groups[key][k]
            p, r, f = c.prf()
            row[k] = {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "tp": c.tp, "fp": c.fp, "fn": c.fn}
        row["header_accuracy"] = round(header[key][0] / header[key][1], 3) if header[key][1] else None
        row["negated_emitted"] = negs[key]
        row["stopped_as_active"] = negs[key + ":stopped"]
        rows.append(row)
    if as_json:
        print(json.dumps({"summary": rows, "documents": per_doc}, indent=2))
        return
    print(f"{'group':32} {'labs F1':>8} {'(P/R)':>12} {'cond F1':>8} {'meds F1':>8} {'header':>7} {'neg.emitted':>11} {'stopped':>7}")
    for r in rows:
        l = r["labs"]
        print(f"{r['group']:32} {l['f1']:8.3f} {l['precision']:5.2f}/{l['recall']:4.2f} {r['conditions']['f1']:8.3f} "
              f"{r['medications']['f1']:8.3f} {r['header_accuracy']:7.3f} {r['negated_emitted']:11d} {r['stopped_as_active']:7d}")
    for d in per_doc:
        if d["labs"][1] or d["labs"][2] or d["conditions"][1] or d["conditions"][2] or d["medications"][1] or d["medications"][2] or d["header_wrong"] or d["negated_emitted"]:
            print(f"  {d['id']}: labs tp/fp/fn {d['labs']}, conditions {d['conditions']}, meds {d['medications']}, header wrong {d['header_wrong']}")


if __name__ == "__main__":
    main()
