#!/usr/bin/env python3
"""Regenerates extract/data/icd10cm.tsv.gz from the CMS ICD-10-CM tabular list (public domain).

Source: the CMS "icd10cm-tabular" XML (April 1, 2026 update), as redistributed in the PyPI package
simple-icd-10-cm 1.5.0 (simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml).

    pip download simple-icd-10-cm==1.5.0 --no-deps -d /tmp/icd && cd /tmp/icd && unzip -o *.whl
    python3 scripts/gen-icd10cm.py /tmp/icd/simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml

Output rows: code (with dot) TAB billable (1/0) TAB description TAB inclusion terms joined by '|'.

The XML lists codes only up to their 6th character. A <sevenChrDef> on a code applies to every
leaf below it (the nearest definition wins where one is nested in another): each leaf gets one
code per <extension>, padded with the placeholder X to 6 characters first (S72.001 + A ->
S72.001A, T78.2 + A -> T78.2XXA), described as the leaf's description + ", " + the extension's
text (as the CMS order file words them). Those leaves are then not billable; their 7th-character
codes are. Everywhere else a leaf is billable and a code with children is not.
"""
import gzip
import io
import sys
import xml.etree.ElementTree as ET

src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "extract/data/icd10cm.tsv.gz"
root = ET.parse(src).getroot()
rows = []


def clean(s):
    return " ".join((s or "").replace("\t", " ").replace("|", "/").split())


def extensions(diag):
    """(char, text) of a code's own <sevenChrDef>, or None. A <note> inside the definition glosses
    the extension before it (H34.81: "stable" = "Old central retinal vein occlusion"); it is not
    a term of any one code, so it is left out."""
    d = diag.find("sevenChrDef")
    if d is None:
        return None
    return [(e.get("char"), clean(e.text)) for e in d.findall("extension")]


def s06_exempt(name, char):
    """Category S06's <notes> say 7th characters D and S do not apply to codes whose 6th character
    is 7 or 8 (death before regaining consciousness): those take A only."""
    bare = name.replace(".", "")
    return bare.startswith("S06") and len(bare) == 6 and bare[5] in "78" and char in "DS"


def walk(diag, inherited):
    name = diag.findtext("name")
    desc = clean(diag.findtext("desc"))
    children = diag.findall("diag")
    terms = [clean(n.text) for inc in diag.findall("inclusionTerm") for n in inc.findall("note")]
    seventh = extensions(diag) or inherited
    extended = not children and seventh is not None
    billable = not children and not extended
    rows.append((name, "1" if billable else "0", desc, "|".join(t for t in terms if t)))
    if extended:
        stem = name.replace(".", "")
        if len(stem) > 6:
            sys.exit(f"{name}: a 7th character on a code that already has 7")
        stem = stem.ljust(6, "X")
        for char, text in seventh:
            if s06_exempt(name, char):
                continue
            rows.append((f"{stem[:3]}.{stem[3:]}{char}", "1", f"{desc}, {text}", ""))
    for c in children:
        walk(c, seventh)


# The S06 exemption is hard-coded; stop if the note it rests on changes.
s06 = [n.text for d in root.iter("diag") if d.findtext("name") == "S06"
       for ns in d.findall("notes") for n in ns.findall("note")]
if not any("7th characters D and S do not apply" in (t or "") for t in s06):
    sys.exit("the S06 note on 7th characters D and S changed: review s06_exempt")

for chapter in root.findall("chapter"):
    for section in chapter.findall("section"):
        for diag in section.findall("diag"):
            walk(diag, None)

# No name or time in the gzip header, so that the same input gives the same bytes.
with open(out, "wb") as raw, io.TextIOWrapper(
    gzip.GzipFile("", "wb", 9, raw, mtime=0), encoding="utf-8"
) as f:
    f.write("# ICD-10-CM FY2026 (April 1, 2026), CMS tabular list, public domain. See scripts/gen-icd10cm.py\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
billable = sum(r[1] == "1" for r in rows)
print(f"{len(rows)} codes ({billable} billable) -> {out}")
