#!/usr/bin/env python3
"""Runs the population dashboards' rendered SQL on a p360 Parquet lake with DuckDB, an engine
independent of the DataFusion one p360 embeds, and prints the results as JSON.

Input (stdin), JSON:
    {"lake": "<lake dir>",
     "schema": {"<table>": [["<column>", "<DuckDB type>"], ...], ...},
     "queries": [{"name": "...", "sql": "<views and query, as p360 renders them>"}, ...]}
Output (stdout), JSON: [{"name": "...", "columns": [...], "rows": [[...], ...]}, ...]
with numbers as numbers, text as text, NULL as null, dates as ISO text.

Each table is a view over read_parquet('<lake>/<table>/**/*.parquet', union_by_name = true),
or an empty table with the schema's columns while the table has no file. Every query gets a
fresh in-memory database, so the views one query creates cannot leak into the next.
"""
import datetime
import decimal
import glob
import json
import os
import sys
import time

import duckdb


def base_tables(con, lake, schema):
    for table, columns in schema.items():
        cols = ", ".join(f'"{name}"' for name, _ in columns)
        pattern = os.path.join(lake, table, "**", "*.parquet")
        if glob.glob(pattern, recursive=True):
            path = pattern.replace("'", "''")
            # Only the schema's columns: no hive partition columns (year, month, day).
            con.execute(
                f"CREATE VIEW {table} AS SELECT {cols} FROM "
                f"read_parquet('{path}', union_by_name = true, hive_partitioning = false)"
            )
        else:
            defs = ", ".join(f'"{name}" {ty}' for name, ty in columns)
            con.execute(f"CREATE TABLE {table} ({defs})")


def value(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return v


def main() -> None:
    job = json.load(sys.stdin)
    rounds = max(1, int(job.get("rounds", 1)))
    out = []
    for q in job["queries"]:
        # Timed like p360's engine: a fresh database with the tables declared, the views and
        # the query, the rows fetched. The best of `rounds` is reported.
        best = None
        for _ in range(rounds):
            started = time.perf_counter()
            con = duckdb.connect()
            base_tables(con, job["lake"], job["schema"])
            # The rendered text is several statements: DuckDB runs them all and returns the
            # result of the last.
            cur = con.execute(q["sql"])
            columns = [d[0] for d in cur.description]
            fetched = cur.fetchall()
            elapsed = time.perf_counter() - started
            con.close()
            best = elapsed if best is None else min(best, elapsed)
        rows = [[value(v) for v in r] for r in fetched]
        out.append({"name": q["name"], "columns": columns, "rows": rows, "seconds": best})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
