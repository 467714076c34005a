#!/usr/bin/env python3
"""Independent reader for dictionary_columns.rs: prints the named columns of one Parquet
file (texts or lists of texts) as JSON lists of values, once as pyarrow reads them and once as DuckDB does.

usage: read_columns.py FILE COLUMN...
"""
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    path, columns = sys.argv[1], sys.argv[2:]
    t = pq.read_table(path, columns=columns)
    def values(col):
        return col.to_pylist() if pa.types.is_list(col.type) else col.cast("string").to_pylist()

    out = {"pyarrow": {c: values(t.column(c)) for c in columns}}
    con = duckdb.connect()
    rows = con.execute(
        "select " + ", ".join(f'"{c}"' for c in columns) + " from read_parquet(?)", [path]
    ).fetchall()
    out["duckdb"] = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
