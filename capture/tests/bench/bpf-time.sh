#!/usr/bin/env bash
# The sensor's eBPF programs' own run time during a C build, as the kernel counts it
# (kernel.bpf_stats_enabled: run_time_ns and run_cnt in each program fd's fdinfo),
# against the build's CPU time. Settles what the with/without pairs of run.sh cannot on
# a noisy machine: how much of the build's CPU the programs in its syscalls take.
#   capture/tests/bench/bpf-time.sh [path/to/lanner-capture] [BUILD_FILES (40)]
# Root. Restores kernel.bpf_stats_enabled on exit.
set -euo pipefail
. "$(dirname "$0")/c-project.sh"
bin=${1:-target/release/lanner-capture}
files=${2:-40}
work=$(mktemp -d)
before=$(sysctl -n kernel.bpf_stats_enabled)
sensor=
cleanup() {
    [[ -n $sensor ]] && kill -INT "$sensor" 2>/dev/null && wait "$sensor" 2>/dev/null || true
    sysctl -qw kernel.bpf_stats_enabled="$before"
    rm -rf "$work"
}
trap cleanup EXIT

c_project "$work/proj" "$files"
make -s -j2 -C "$work/proj" >/dev/null # warm the page cache

# Sum of run_time_ns and run_cnt over the sensor's program fds.
bpf_time() {
    for fd in /proc/"$sensor"/fdinfo/*; do
        awk '/^run_time_ns/ {t = $2} /^run_cnt/ {c = $2} END {if (t != "") print t, c}' "$fd"
    done | awk '{t += $1; c += $2} END {print t + 0, c + 0}'
}

sysctl -qw kernel.bpf_stats_enabled=1
"$bin" --stdout >/dev/null 2>"$work/sensor.log" &
sensor=$!
sleep 3
read -r t0 c0 < <(bpf_time)
make -s -C "$work/proj" clean
/usr/bin/time -f "%e %U %S" -o "$work/time" make -s -j2 -C "$work/proj" >/dev/null
read -r t1 c1 < <(bpf_time)
awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) '{
    cpu = $2 + $3
    printf "build: %.2f s wall, %.2f s CPU; eBPF programs: %.1f ms in %d runs (%.0f ns per run) = %.2f %% of the build CPU\n",
        $1, cpu, t / 1e6, c, (c ? t / c : 0), t / 1e9 / cpu * 100
}' "$work/time"
