#!/usr/bin/env python3
"""Regenerates extract/data/icd10cm.tsv.gz from the CMS ICD-10-CM tabular list (public domain).

Source: the CMS "icd10cm-tabular" XML (April 1, 2026 update), as redistributed in the PyPI package
simple-icd-10-cm 1.5.0 (simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml).

    pip download simple-icd-10-cm==1.5.0 --no-deps -d /tmp/icd && cd /tmp/icd && unzip -o *.whl
    python3 scripts/gen-icd10cm.py /tmp/icd/simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml

Output rows: code (with dot) TAB billable (1/0) TAB description TAB inclusion terms joined by '|'.
"""
import gzip
import sys
import xml.etree.ElementTree as ET

src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "extract/data/icd10cm.tsv.gz"
root = ET.parse(src).getroot()
rows = []


def clean(s):
    return " ".join((s or "").replace("\t", " ").replace("|", "/").split())


def walk(diag):
    name = diag.findtext("name")
    desc = clean(diag.findtext("desc"))
    children = diag.findall("diag")
    terms = [clean(n.text) for inc in diag.findall("inclusionTerm") for n in inc.findall("note")]
    rows.append((name, "0" if children else "1", desc, "|".join(t for t in terms if t)))
    for c in children:
        walk(c)


for chapter in root.findall("chapter"):
    for section in chapter.findall("section"):
        for diag in section.findall("diag"):
            walk(diag)

with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as f:
    f.write("# ICD-10-CM FY2026 (April 1, 2026), CMS tabular list, public domain. See scripts/gen-icd10cm.py\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
print(f"{len(rows)} codes -> {out}")
