#!/usr/bin/env python3
"""Splink (Fellegi-Sunter with EM, DuckDB backend) on the records `p360 bench match` exports.

    python splink_match.py ROSTER.csv RECORDS.csv OUT.json

Both CSVs: uid, member_id, first, middle, last, suffix, dob, sex, street, zip, phone, email
(the same normalised-only-by-case fields p360 reads). Settings follow Splink's own examples
for person linkage: name comparisons with Jaro-Winkler levels and term-frequency
adjustments, Splink's date-of-birth comparison (exact, one edit, within a month / a year /
ten years), exact matches on sex, zip, phone, email and the carried member id; blocking on
the same keys p360 uses (birth date, family name + birth year, given name + month-day,
phone, email, zip + house number). u by random sampling, m by EM in two sessions (blocked on
birth date, then on family and given name). OUT.json: seconds (linkage only, not the
interpreter start) and, per match-probability threshold, the best member of each record.
"""
import json
import sys
import time

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

roster_path, records_path, out_path = sys.argv[1:4]
cols = ["uid", "member_id", "first", "middle", "last", "suffix", "dob", "sex", "street", "zip", "phone", "email"]
read = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])[cols]
roster, records = read(roster_path), read(records_path)
t0 = time.perf_counter()
for df in (roster, records):
    for c in ("first", "middle", "last", "street", "email"):
        df[c] = df[c].str.lower()
    df["birth_year"] = df["dob"].str[:4]
    df["month_day"] = df["dob"].str[5:]
    df["house"] = df["street"].str.split(" ").str[0]

settings = SettingsCreator(
    link_type="link_only",
    unique_id_column_name="uid",
    comparisons=[
        cl.NameComparison("first").configure(term_frequency_adjustments=True),
        cl.NameComparison("last").configure(term_frequency_adjustments=True),
        cl.ExactMatch("middle"),
        cl.ExactMatch("suffix"),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.ExactMatch("sex"),
        cl.LevenshteinAtThresholds("street", [3]),
        cl.ExactMatch("zip"),
        cl.ExactMatch("phone"),
        cl.ExactMatch("email"),
        cl.ExactMatch("member_id"),
    ],
    blocking_rules_to_generate_predictions=[
        block_on("dob"),
        block_on("last", "birth_year"),
        block_on("first", "month_day"),
        block_on("phone"),
        block_on("email"),
        block_on("zip", "house"),
        block_on("member_id"),
    ],
    retain_intermediate_calculation_columns=False,
    # Each record is about at most one member: the chance that a random record-member pair
    # matches is about one in the roster's size.
    probability_two_random_records_match=1.0 / max(len(roster), 1),
)
linker = Linker([roster, records], settings, db_api=DuckDBAPI(), input_table_aliases=["roster", "records"])
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("last", "first"))
pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
seconds = time.perf_counter() - t0
# uid_l / uid_r: which side is the roster depends on the table order.
if "source_dataset_l" in pred.columns:
    left_is_roster = pred["source_dataset_l"] == "roster"
    pred["member_uid"] = pred["uid_l"].where(left_is_roster, pred["uid_r"])
    pred["record_uid"] = pred["uid_r"].where(left_is_roster, pred["uid_l"])
else:
    pred["member_uid"], pred["record_uid"] = pred["uid_l"], pred["uid_r"]
best = pred.sort_values("match_probability", ascending=False).drop_duplicates("record_uid")
out = {"seconds": seconds, "pairs": int(len(pred)), "thresholds": {}}
for t in (0.5, 0.9, 0.99, 0.999):
    sel = best[best["match_probability"] >= t]
    out["thresholds"][str(t)] = dict(zip(sel["record_uid"], sel["member_uid"]))
json.dump(out, open(out_path, "w"))
print(f"splink: {len(pred)} pairs scored, {seconds:.1f} s", file=sys.stderr)
