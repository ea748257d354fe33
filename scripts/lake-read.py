#!/usr/bin/env python3
"""Reads a p360 Parquet lake with DuckDB (an independent reader) and prints what it holds as
JSON: rows per table, and the observation rows. Used by the end-to-end tests; handy by hand:

    scripts/lake-read.py data/objects/lake
"""
import json
import sys

import duckdb


def main() -> None:
    root = sys.argv[1]
    con = duckdb.connect()
    out = {"tables": {}, "observations": []}
    for table in ("graph_changes", "observations", "conditions", "medications", "access_log"):
        glob = f"{root}/{table}/*/*/*/*.parquet"
        try:
            n = con.execute(
                f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
            ).fetchone()[0]
        except duckdb.IOException:
            n = 0  # no file yet
        out["tables"][table] = n
    if out["tables"]["observations"]:
        rows = con.execute(
            f"""SELECT patient_key, fact_id, code, value, unit, status, change_kind,
                       strftime(effective_date, '%Y-%m-%d'), year, month, day
                FROM read_parquet('{root}/observations/*/*/*/*.parquet', hive_partitioning = true)
                ORDER BY fact_id, committed_at"""
        ).fetchall()
        keys = ("patient_key", "fact_id", "code", "value", "unit", "status", "change_kind",
                "effective_date", "year", "month", "day")
        out["observations"] = [dict(zip(keys, [str(v) if k in ("year", "month", "day") else v
                                               for k, v in zip(keys, r)])) for r in rows]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
