#!/usr/bin/env python3
"""Independent reader for the archiver's tests: reads one table of a lanner archive with
pyarrow (local directory or S3) and, for local archives, cross-checks with DuckDB.
Prints one JSON object: rows, distinct ids, files, columns, partitions and per-file facts
(compression, recorded sort order, page index, bloom filters, schema version, sortedness).

usage: read_archive.py TABLE ID_COLUMN TIME_COLUMN (--dir DIR | --s3 ENDPOINT BUCKET/PREFIX KEY SECRET)
"""
import json
import sys

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pfs
import pyarrow.parquet as pq


def main():
    table, id_col, time_col, mode = sys.argv[1:5]
    if mode == "--dir":
        fs, root = pfs.LocalFileSystem(), sys.argv[5]
    elif mode == "--s3":
        endpoint, root, key, secret = sys.argv[5:9]
        scheme, host = endpoint.split("://", 1)
        fs = pfs.S3FileSystem(endpoint_override=host, scheme=scheme, access_key=key,
                              secret_key=secret, region="us-east-1")
    else:
        sys.exit("unknown mode " + mode)
    base = root.rstrip("/") + "/" + table
    try:
        infos = fs.get_file_info(pfs.FileSelector(base, recursive=True))
    except FileNotFoundError:
        infos = []
    files = sorted(i.path for i in infos if i.path.endswith(".parquet"))
    out = {"files": len(files), "rows": 0, "distinct_ids": 0, "columns": [], "partitions": [], "file_facts": []}
    if not files:
        print(json.dumps(out))
        return
    part = ds.partitioning(flavor="hive")
    dataset = ds.dataset(files, filesystem=fs, format="parquet", partitioning=part, partition_base_dir=base)
    t = dataset.to_table()
    out["rows"] = t.num_rows
    out["distinct_ids"] = len(pc.unique(t.column(id_col).drop_null()))
    out["null_ids"] = t.column(id_col).null_count
    out["columns"] = [f.name for f in pq.ParquetFile(files[0], filesystem=fs).schema_arrow]
    out["partitions"] = sorted({p[len(base) + 1:].rsplit("/", 1)[0] for p in files})
    for path in files:
        pf = pq.ParquetFile(path, filesystem=fs)
        md = pf.metadata
        kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items() if not k.startswith(b"ARROW")}
        rg = md.row_group(0)
        time_idx = pf.schema_arrow.get_field_index(time_col)
        col = rg.column(time_idx)
        times = pf.read(columns=[time_col]).column(0).cast("int64").to_pylist()
        out["file_facts"].append({
            "name": path[len(base) + 1:],
            "rows": md.num_rows,
            "row_groups": md.num_row_groups,
            "compression": col.compression,
            "sorting_columns": [[s.column_index, s.descending, s.nulls_first] for s in (rg.sorting_columns or [])],
            "time_index": time_idx,
            "has_column_index": col.has_column_index,
            "has_offset_index": col.has_offset_index,
            "has_statistics": col.is_stats_set,
            "sorted": all(a is None or (b is not None and a <= b) for a, b in zip(times, times[1:])),
            "metadata": kv,
        })
    if mode == "--dir":
        import duckdb
        con = duckdb.connect()
        glob = base + "/**/*.parquet"
        n, d = con.execute(
            f"select count(*), count(distinct {id_col}) from read_parquet(?, hive_partitioning=true, union_by_name=true)",
            [glob]).fetchone()
        out["duckdb_rows"], out["duckdb_distinct_ids"] = n, d
        blooms = con.execute(
            "select distinct path_in_schema from parquet_metadata(?) where bloom_filter_offset is not null",
            [glob]).fetchall()
        out["bloom_columns"] = sorted(b[0] for b in blooms)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
