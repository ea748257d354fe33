#!/usr/bin/env python3
"""Generates synthetic medical documents with exact ground truth, in layouts, fonts and
degradations the shared fixture set does not use, to check extraction on unseen material.

    python3 -m venv /tmp/gen && /tmp/gen/bin/pip install pillow
    /tmp/gen/bin/python scripts/gen-documents.py testdata/documents/generated [--count 8] [--seed 7]

Everything is invented; every page carries "SYNTHETIC TEST DOCUMENT - NOT A REAL PATIENT".
Truth files follow the shared format (patient, date, provider, labs, conditions, negated,
medications) so `scripts/score-extraction.py` scores them.
"""
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = {
    "mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "condensed": "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
}
# (printed name, loinc, unit printed, ucum, low, high, decimals)
ANALYTES = [
    ("Glucose", "2345-7", "mg/dL", "mg/dL", 70, 99, 0),
    ("Urea Nitrogen", "3094-0", "mg/dL", "mg/dL", 7, 20, 0),
    ("Creatinine", "2160-0", "mg/dL", "mg/dL", 0.6, 1.2, 2),
    ("Sodium", "2951-2", "mmol/L", "mmol/L", 135, 145, 0),
    ("Potassium", "2823-3", "mmol/L", "mmol/L", 3.5, 5.1, 1),
    ("Chloride", "2075-0", "mmol/L", "mmol/L", 98, 107, 0),
    ("Calcium", "17861-6", "mg/dL", "mg/dL", 8.6, 10.3, 1),
    ("Albumin", "1751-7", "g/dL", "g/dL", 3.5, 5.0, 1),
    ("Hemoglobin A1c", "4548-4", "%", "%", 4.0, 5.6, 1),
    ("Cholesterol, Total", "2093-3", "mg/dL", "mg/dL", 100, 199, 0),
    ("Triglycerides", "2571-8", "mg/dL", "mg/dL", 0, 149, 0),
    ("HDL Cholesterol", "2085-9", "mg/dL", "mg/dL", 40, 90, 0),
    ("Hemoglobin", "718-7", "g/dL", "g/dL", 12.0, 16.0, 1),
    ("Hematocrit", "4544-3", "%", "%", 36.0, 46.0, 1),
    ("Platelets", "777-3", "K/uL", "10*3/uL", 150, 400, 0),
    ("WBC", "6690-2", "K/uL", "10*3/uL", 4.0, 10.5, 1),
    ("TSH", "3016-3", "mIU/L", "m[IU]/L", 0.45, 4.5, 2),
    ("Free T4", "3024-7", "ng/dL", "ng/dL", 0.8, 1.8, 2),
    ("Ferritin", "2276-4", "ng/mL", "ng/mL", 30, 400, 0),
    ("Magnesium", "19123-9", "mg/dL", "mg/dL", 1.7, 2.4, 1),
    ("Uric Acid", "3084-1", "mg/dL", "mg/dL", 3.4, 7.0, 1),
    ("AST", "1920-8", "U/L", "U/L", 10, 40, 0),
    ("ALT", "1742-6", "U/L", "U/L", 7, 56, 0),
]
CONDITIONS = [
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("M54.50", "Low back pain, unspecified"),
    ("F41.1", "Generalized anxiety disorder"),
    ("E03.9", "Hypothyroidism, unspecified"),
    ("G47.33", "Obstructive sleep apnea (adult) (pediatric)"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
]
NEGATED = [("chest pain", "R07.9"), ("fever", "R50.9"), ("shortness of breath", "R06.02"), ("headache", "R51.9")]
MEDS = [
    ("lisinopril", "10 mg", "tablet", "take 1 tablet by mouth daily"),
    ("metformin", "1000 mg", "tablet", "take 1 tablet by mouth twice daily with meals"),
    ("atorvastatin", "40 mg", "tablet", "take 1 tablet by mouth at bedtime"),
    ("levothyroxine", "75 mcg", "tablet", "take 1 tablet by mouth every morning"),
    ("sertraline", "50 mg", "tablet", "take 1 tablet by mouth daily"),
    ("albuterol", "90 mcg/actuation", "inhaler", "inhale 2 puffs every 6 hours as needed"),
    ("omeprazole", "20 mg", "capsule", "take 1 capsule by mouth daily before breakfast"),
    ("gabapentin", "300 mg", "capsule", "take 1 capsule by mouth three times daily"),
]
FIRST = ["Maren", "Tobias", "Lucia", "Dmitri", "Harriet", "Osman", "Priya", "Wendell"]
LAST = ["Quillfeather", "Abernathy", "Sorensen", "Okafor", "Villanueva", "Hargrove", "Lindqvist", "Moreau"]
DOCS = ["Imogen Tate", "Rafael Ibsen", "Colette Nakamura", "Bram Oduya"]


def value_for(rng, a):
    name, loinc, unit, ucum, lo, hi, dec = a
    span = hi - lo if hi > lo else hi
    v = rng.uniform(lo - span * 0.3, hi + span * 0.3)
    v = max(v, 0.1 if dec else 1)
    v = round(v, dec) if dec else int(round(v))
    flag = "H" if v > hi else ("L" if v < lo and lo > 0 else "")
    fmt = f"{{:.{dec}f}}" if dec else "{}"
    ref = f"{fmt.format(lo)}-{fmt.format(hi)}" if lo > 0 else f"<{fmt.format(hi + (1 if not dec else 0))}"
    if lo == 0:
        flag = "H" if v >= hi + 1 else ""
    return v, fmt.format(v), ref, flag


def render(lines, font_name, size, width=1700, height=2200):
    img = Image.new("L", (width, height), 255)
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONTS[font_name], size)
    bold = ImageFont.truetype(FONTS[font_name].replace(".ttf", "-Bold.ttf"), size)
    y = 110
    for kind, content in lines:
        if kind == "gap":
            y += size
            continue
        if kind == "cols":
            for x, text in content:
                d.text((x, y), text, fill=20, font=font)
        else:
            d.text((120, y), content, fill=20, font=bold if kind == "head" else font)
        y += int(size * 1.55)
    d.text((120, height - 120), "SYNTHETIC TEST DOCUMENT - NOT A REAL PATIENT", fill=20, font=font)
    return img


def degrade(rng, img):
    angle = rng.uniform(-2.5, 2.5)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
    w, h = img.size
    # Lighting gradient, blur, noise, lower resolution, JPEG.
    grad = Image.linear_gradient("L").resize((w, h)).point(lambda p: 255 - p // 5)
    img = Image.composite(img, Image.new("L", (w, h), 0), grad)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    scale = rng.uniform(0.8, 0.95)
    img = img.resize((int(w * scale), int(h * scale)), Image.BILINEAR)
    noise = Image.effect_noise(img.size, rng.uniform(6, 12)).point(lambda p: p - 128)
    img = Image.eval(Image.merge("L", [img]), lambda p: p)
    px = img.load(); nz = noise.load()
    for yy in range(0, img.size[1], 1):
        for xx in range(0, img.size[0], 3):
            px[xx, yy] = max(0, min(255, px[xx, yy] + (nz[xx, yy] - 0) // 4))
    return img, {"group": "photo", "level": "generated", "rotation_deg": round(angle, 2), "scale": round(scale, 2)}


def make(rng, i, out):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    mid = rng.choice("ABCDEJKLMRT")
    dob = f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    date = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    mrn = f"{rng.choice('ABHKZ')}{rng.randint(1000000, 9999999)}"
    doc_first, doc_last = rng.choice(DOCS).split()
    font = rng.choice(list(FONTS))
    us = lambda iso: f"{iso[5:7]}/{iso[8:10]}/{iso[0:4]}"
    kind = "lab_report" if i % 2 == 0 else "visit_summary"
    labs, conditions, negated, meds = [], [], [], []
    lines = [("head", "NORTHGATE MEDICAL GROUP" if kind == "visit_summary" else "CEDAR RIDGE LABORATORY SERVICES"),
             ("text", "1200 Alder Way, Eastfield, OR 97000  Tel 555-0100"), ("gap", None),
             ("text", f"Name: {last}, {first} {mid}"), ("text", f"Date of Birth: {us(dob)}"),
             ("text", f"MRN: {mrn}")]
    if kind == "lab_report":
        lines += [("text", f"Ordering Provider: {doc_first} {doc_last}, MD"), ("text", f"Collection Date: {us(date)}"), ("gap", None)]
        lines.append(("cols", [(120, "TEST"), (700, "RESULT"), (900, "FLAG"), (1050, "UNITS"), (1300, "REFERENCE")]))
        for a in rng.sample(ANALYTES, rng.randint(8, 14)):
            v, text, ref, flag = value_for(rng, a)
            lines.append(("cols", [(120, a[0]), (700, text), (900, flag), (1050, a[2]), (1300, ref)]))
            lo, hi = (None, float(ref[1:])) if ref.startswith("<") else tuple(float(x) for x in ref.split("-"))
            labs.append({"name": a[0], "loinc": a[1], "value": v, "value_text": text, "unit": a[2], "ucum": a[3],
                         "ref_low": lo, "ref_high": hi, "ref_text": ref, "flag": flag})
    else:
        lines += [("text", f"Date of Service: {us(date)}"), ("text", f"Seen by: Dr. {doc_first} {doc_last}"), ("gap", None),
                  ("head", "History of Present Illness:")]
        neg = rng.sample(NEGATED, 2)
        lines.append(("text", f"Follow-up visit. The patient denies {neg[0][0]} and {neg[1][0]}."))
        negated += [{"text": n[0], "icd10cm": n[1], "kind": "negated"} for n in neg]
        fam = rng.choice([("diabetes", "E11.9"), ("hypertension", "I10")])
        lines.append(("text", f"Family history: mother with {fam[0]}."))
        lines.append(("gap", None))
        lines.append(("head", "Assessment/Plan:"))
        chosen = rng.sample(CONDITIONS, rng.randint(2, 4))
        if fam[1] in [c[0] for c in chosen]:
            chosen = [c for c in chosen if c[0] != fam[1]]
        else:
            negated.append({"text": fam[0], "icd10cm": fam[1], "kind": "family_history"})
        for k, (code, text) in enumerate(chosen, 1):
            printed = rng.random() < 0.5
            lines.append(("text", f"{k}) {text}" + (f" [{code}]" if printed else "")))
            conditions.append({"text": text, "icd10cm": code, "code_printed": printed})
        lines += [("gap", None), ("head", "Current Medications:")]
        for name, strength, form, sig in rng.sample(MEDS, rng.randint(2, 4)):
            lines.append(("text", f"{name.capitalize()} {strength} {form}, {sig}"))
            meds.append({"name": name, "strength": strength, "sig": sig, "form": form})
    img = render(lines, font, rng.choice([26, 28, 30]))
    stem = f"gen_{i + 1:03d}"
    degradation = {"group": "clean", "level": "clean"}
    if i % 3 != 0:
        img, degradation = degrade(rng, img)
        img.save(out / f"{stem}.jpg", quality=rng.choice([75, 82, 88]))
        image = f"{stem}.jpg"
    else:
        img.save(out / f"{stem}.png")
        image = f"{stem}.png"
    truth = {
        "schema": "patient360-document-truth/1", "id": stem, "image": image, "doc_type": kind,
        "patient": {"name": f"{first} {mid} {last}", "family": last, "given": [first, mid], "birth_date": dob, "mrn": mrn},
        "date": date, "provider": {"family": doc_last, "given": doc_first},
        "labs": labs, "conditions": conditions, "negated": negated, "medications": meds, "medications_stopped": [],
        "degradation": degradation, "render": {"layout": "generated", "font": font},
    }
    (out / f"{stem}.truth.json").write_text(json.dumps(truth, indent=2))


def main():
    out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 8
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 7
    rng = random.Random(seed)
    for i in range(count):
        make(rng, i, out)
    print(f"{count} documents in {out}")


if __name__ == "__main__":
    main()
