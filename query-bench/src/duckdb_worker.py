"""DuckDB side of lanner-query-bench: one query per stdin line (JSON), one answer per line.

Request: {"sql": "...", "check": bool}. Answer: {"ms": float, "cpu_ms": float, "rows": int,
"canon": [...]}
(canon: the result's rows in canonical text form, only when "check" is set) or
{"error": "..."}. Timing covers execute + fetching the result as Arrow, as the
DataFusion side collects record batches; cpu_ms is this process's CPU time (all of
DuckDB's threads) over the same span.
"""
import json
import sys
import time

import duckdb
import pyarrow as pa

archive, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET TimeZone = 'UTC'")
con.execute(
    "CREATE VIEW events AS SELECT * FROM read_parquet("
    f"'{archive}/events/*/*/*.parquet', hive_partitioning = true, "
    "hive_types = {'dt': DATE, 'hour': INTEGER})"
)


def canon_column(col):
    t = col.type
    if pa.types.is_timestamp(t):
        mult = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": None}[t.unit]
        ints = col.cast(pa.int64()).to_pylist()
        return [None if v is None else (v // 1000 if mult is None else v * mult) for v in ints]
    if pa.types.is_date(t):
        return [None if v is None else v.isoformat() for v in col.to_pylist()]
    return col.to_pylist()


def canon_value(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def canon(table):
    cols = [canon_column(table.column(i)) for i in range(table.num_columns)]
    rows = ["\x1f".join(canon_value(c[r]) for c in cols) for r in range(table.num_rows)]
    rows.sort()
    return rows


for line in sys.stdin:
    req = json.loads(line)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        table = con.execute(req["sql"]).to_arrow_table()
        ms = (time.perf_counter() - t0) * 1000.0
        cpu_ms = (time.process_time() - c0) * 1000.0
        out = {"ms": ms, "cpu_ms": cpu_ms, "rows": table.num_rows}
        if req.get("check"):
            out["canon"] = canon(table)
    except Exception as e:  # reported to the harness, which fails the query
        out = {"error": str(e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
