#!/usr/bin/env python3
"""Writes Textract responses for the adapter's tests: extract/tests/data/textract-{analyze,detect}.json.

No local server emulates Textract's output (moto answers with empty blocks), so the adapter is
tested against responses in the documented wire format of AnalyzeDocument (TABLES, FORMS) and
DetectDocumentText: PAGE, LINE and WORD blocks with fractional geometry, CHILD relationships,
TABLE → CELL (RowIndex, ColumnIndex) and KEY_VALUE_SET (EntityTypes KEY/VALUE, VALUE
relationship). The page is a small lab report; one table row is drawn with a curl (its cells
drift downwards) so that only the table structure keeps the row together, and the patient's
name is printed under its label, so that only the form pair ties them.

    python3 scripts/gen-textract-fixture.py
"""
import json, os, uuid

root = os.path.join(os.path.dirname(__file__), "..", "extract", "tests", "data")
ns = uuid.UUID("6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f")
blocks, words_by_line, counter = [], [], [0]
CHAR_W, H = 0.011, 0.012  # fraction of the page per character, word height


def bid():
    counter[0] += 1
    return str(uuid.uuid5(ns, str(counter[0])))


def geometry(left, top, width, height):
    return {
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "Polygon": [{"X": left, "Y": top}, {"X": left + width, "Y": top},
                    {"X": left + width, "Y": top + height}, {"X": left, "Y": top + height}],
    }


def word(text, left, top, conf=99.2):
    b = {"BlockType": "WORD", "Confidence": conf, "Text": text, "TextType": "PRINTED",
         "Geometry": geometry(left, top, CHAR_W * len(text), H), "Id": bid(), "Page": 1}
    blocks.append(b)
    return b


def phrase(text, left, top):
    """Words of a phrase laid out left to right; returns the word blocks."""
    out, x = [], left
    for t in text.split():
        out.append(word(t, x, top))
        x += CHAR_W * (len(t) + 1)
    return out


def line(ws):
    left = min(w["Geometry"]["BoundingBox"]["Left"] for w in ws)
    top = min(w["Geometry"]["BoundingBox"]["Top"] for w in ws)
    right = max(w["Geometry"]["BoundingBox"]["Left"] + w["Geometry"]["BoundingBox"]["Width"] for w in ws)
    bottom = max(w["Geometry"]["BoundingBox"]["Top"] + w["Geometry"]["BoundingBox"]["Height"] for w in ws)
    b = {"BlockType": "LINE", "Confidence": 99.0, "Text": " ".join(w["Text"] for w in ws),
         "Geometry": geometry(left, top, right - left, bottom - top), "Id": bid(), "Page": 1,
         "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in ws]}]}
    blocks.append(b)
    return b


page = {"BlockType": "PAGE", "Geometry": geometry(0.0, 0.0, 1.0, 1.0), "Id": bid(), "Page": 1}
blocks.append(page)
lines = []
lines.append(line(phrase("NORTHSIDE CLINICAL LABORATORY", 0.08, 0.05)))
name_key = phrase("Patient Name:", 0.08, 0.12)
lines.append(line(name_key))
name_value = phrase("DOE, JANE", 0.08, 0.14)  # printed under its label
lines.append(line(name_value))
dob_key = phrase("DOB:", 0.50, 0.12)
dob_value = phrase("03/14/1961", 0.56, 0.12)
lines.append(line(dob_key + dob_value))
col_key = phrase("Collected:", 0.08, 0.18)
col_value = phrase("02/10/2026", 0.21, 0.18)
lines.append(line(col_key + col_value))

columns = [0.08, 0.40, 0.52, 0.66, 0.84]
rows = [
    ("Test", "Result", "Units", "Reference Range", "Flag"),
    ("Glucose", "112", "mg/dL", "70-99", "H"),
    ("Hemoglobin A1c", "6.1", "%", "4.0-5.6", "H"),
    ("Sodium", "140", "mmol/L", "136-145", ""),
    ("Creatinine", "0.9", "mg/dL", "0.6-1.2", ""),
]
cells, row_words = [], []
for r, row in enumerate(rows, start=1):
    top = 0.26 + 0.04 * r
    ws_row = []
    for c, text in enumerate(row, start=1):
        # Row 3 curls: each cell sits lower than the one before, by more than a word's height
        # over the row, so grouping by vertical overlap alone would split it.
        drift = 0.008 * (c - 1) if r == 3 else 0.0
        ws = phrase(text, columns[c - 1], top + drift) if text else []
        ws_row += ws
        cell = {"BlockType": "CELL", "Confidence": 95.0, "RowIndex": r, "ColumnIndex": c,
                "RowSpan": 1, "ColumnSpan": 1, "Id": bid(), "Page": 1,
                "Geometry": geometry(columns[c - 1], top, 0.11, H + 0.02)}
        if ws:
            cell["Relationships"] = [{"Type": "CHILD", "Ids": [w["Id"] for w in ws]}]
        blocks.append(cell)
        cells.append(cell)
    # Textract's LINE blocks split a table row at wide gaps: one line per cell.
    for c, text in enumerate(row):
        cell_words = [w for w in ws_row if abs(w["Geometry"]["BoundingBox"]["Left"] - columns[c]) < 0.1
                      and w["Geometry"]["BoundingBox"]["Left"] >= columns[c]]
        if cell_words:
            lines.append(line(cell_words))
table = {"BlockType": "TABLE", "Confidence": 97.0, "Id": bid(), "Page": 1,
         "Geometry": geometry(0.07, 0.29, 0.86, 0.22),
         "Relationships": [{"Type": "CHILD", "Ids": [c["Id"] for c in cells]}]}
blocks.append(table)


def kv(key_words, value_words):
    value = {"BlockType": "KEY_VALUE_SET", "Confidence": 90.0, "EntityTypes": ["VALUE"], "Id": bid(),
             "Page": 1, "Geometry": geometry(0.08, 0.14, 0.2, H),
             "Relationships": [{"Type": "CHILD", "Ids": [w["Id"] for w in value_words]}]}
    key = {"BlockType": "KEY_VALUE_SET", "Confidence": 90.0, "EntityTypes": ["KEY"], "Id": bid(),
           "Page": 1, "Geometry": geometry(0.08, 0.12, 0.2, H),
           "Relationships": [{"Type": "VALUE", "Ids": [value["Id"]]},
                             {"Type": "CHILD", "Ids": [w["Id"] for w in key_words]}]}
    blocks.extend([key, value])


kv(name_key, name_value)
kv(dob_key, dob_value)
kv(col_key, col_value)
page["Relationships"] = [{"Type": "CHILD", "Ids": [l["Id"] for l in lines] + [table["Id"]]}]

analyze = {"DocumentMetadata": {"Pages": 1}, "Blocks": blocks, "AnalyzeDocumentModelVersion": "1.0"}
keep = {"PAGE", "LINE", "WORD"}
detect_blocks = []
for b in blocks:
    if b["BlockType"] in keep:
        b = dict(b)
        if b["BlockType"] == "PAGE":
            b["Relationships"] = [{"Type": "CHILD", "Ids": [l["Id"] for l in lines]}]
        detect_blocks.append(b)
detect = {"DocumentMetadata": {"Pages": 1}, "Blocks": detect_blocks, "DetectDocumentTextModelVersion": "1.0"}
for name, doc in [("textract-analyze.json", analyze), ("textract-detect.json", detect)]:
    with open(os.path.join(root, name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
print(f"{len(blocks)} blocks (analyze), {len(detect_blocks)} (detect)")
