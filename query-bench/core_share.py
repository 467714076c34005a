#!/usr/bin/env python3
"""How many cores each engine keeps busy while it runs, from scheduler switches.

    perf record -e sched:sched_switch -a -o sched.perf \
        lanner-query-bench --archive DIR --reps 5 --only dns_history
    perf script -i sched.perf -F cpu,time,event,trace | python3 core_share.py

Every stretch of time between two context switches is counted by what ran on each
CPU: threads of the harness (lanner-query's runtime: `tokio-*`, the harness binary),
of DuckDB's worker (`python3`), anything else, or nothing. The report gives, for each
engine, the seconds during which it alone ran on one core or on two; the share of two
is how well the engine's work is spread over the cores (BENCHMARKS.md, Query,
twenty-fifth session).
"""

import collections
import re
import sys

SWITCH = re.compile(
    r"\[(\d+)\]\s+([\d.]+): sched:sched_switch: .*?==> next_comm=(.*?) next_pid=(\d+)"
)


def owner(comm: str) -> str:
    if comm.startswith("tokio") or comm.startswith("lanner") or comm.startswith("qb-"):
        return "lanner-query"
    if comm.startswith("python"):
        return "duckdb"
    if comm.startswith("swapper"):
        return "idle"
    return "other"


def main() -> None:
    events = []
    for line in sys.stdin:
        m = SWITCH.search(line)
        if m:
            events.append((float(m[2]), int(m[1]), owner(m[3])))
    events.sort()
    cpus = sorted({cpu for _, cpu, _ in events})
    running = {}
    seconds = collections.Counter()
    last = None
    for t, cpu, who in events:
        if last is not None:
            owners = [running.get(c, "idle") for c in cpus]
            engines = {o for o in owners if o in ("lanner-query", "duckdb")}
            if len(engines) == 1:
                engine = engines.pop()
                seconds[(engine, owners.count(engine))] += t - last
        running[cpu] = who
        last = t
    print("| engine | alone on 1 core, s | alone on 2+ cores, s | share on 2+ |")
    print("|---|---:|---:|---:|")
    for engine in ("lanner-query", "duckdb"):
        one = seconds[(engine, 1)]
        more = sum(v for (e, n), v in seconds.items() if e == engine and n >= 2)
        share = more / (one + more) if one + more else 0.0
        print(f"| {engine} | {one:.3f} | {more:.3f} | {share:.2f} |")


if __name__ == "__main__":
    main()
