#!/usr/bin/env bash
# Benchmarks lanner-capture on this machine (root): events/s the kernel side delivers to
# userspace on one core, and the overhead the sensor adds to an open/close loop and to a
# C build, measured in the same run with and without the sensor (medians of RUNS).
#   capture/tests/bench/run.sh [path/to/lanner-capture]   (default: release build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/../../../target}/release/lanner-capture}
runs=${RUNS:-5}
iters=${ITERS:-1000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
[[ $(id -u) == 0 ]] || { echo "needs root (loads eBPF programs)"; exit 1; }
gcc -O2 -o "$work/openclose" "$here/openclose.c"
touch "$work/target"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_sensor() { # args: extra flags; waits until attached
    "$bin" --node bench "$@" >/dev/null 2>"$work/sensor.log" &
    sensor=$!
    for _ in $(seq 1 300); do grep -q "process table seeded" "$work/sensor.log" && return; sleep 0.1; done
    echo "sensor did not start:"; cat "$work/sensor.log"; exit 1
}
stop_sensor() { kill -INT "$sensor"; wait "$sensor" || true; grep -o "sensor stopped.*" "$work/sensor.log" | sed 's/\x1b\[[0-9;]*m//g'; }

loop() { taskset -c 1 "$work/openclose" "$work/target" "$iters"; }

echo "== open/close loop, $iters iterations, ns per iteration (median of $runs), loop on CPU 1"
declare -A res
for mode in baseline stdout filtered; do
    case $mode in
        baseline) ;;
        stdout) start_sensor --stdout ;;
        filtered) start_sensor --stdout --drop-read-only-opens ;;
    esac
    res[$mode]=$(for _ in $(seq "$runs"); do loop; done | median)
    [[ $mode == baseline ]] || stop_sensor
    echo "$mode: ${res[$mode]} ns/iter"
done
echo "ratio stdout/baseline: $(echo "${res[stdout]} / ${res[baseline]}" | bc -l | cut -c1-5)"
echo "ratio filtered/baseline: $(echo "${res[filtered]} / ${res[baseline]}" | bc -l | cut -c1-5)"

echo "== kernel-to-userspace rate: sensor counting records on CPU 0, open/close on CPU 1"
start_sensor --stdout --count-only
taskset -p -c 0 "$sensor" >/dev/null
t0=$(date +%s.%N); loop >/dev/null; t1=$(date +%s.%N)
stop_sensor
echo "loop wall time: $(echo "$t1 - $t0" | bc -l | cut -c1-6) s for $iters opens"

echo "== C build (gcc -O2 -j2 of 120 generated files), seconds (median of 3)"
mkdir -p "$work/proj"
for i in $(seq 120); do
    { echo "#include <stdio.h>"; echo "#include <string.h>"; echo "#include <stdlib.h>";
      for j in $(seq 40); do echo "int f${i}_$j(int x){char b[64];snprintf(b,sizeof b,\"%d\",x*$j);return (int)strlen(b)+atoi(b)%$((j+1));}"; done
    } > "$work/proj/f$i.c"
done
printf 'OBJS=%s\nall: $(OBJS)\n%%.o: %%.c\n\tgcc -O2 -c $< -o $@\nclean:\n\trm -f *.o\n' "$(cd "$work/proj" && ls *.c | sed 's/\.c$/.o/' | tr '\n' ' ')" > "$work/proj/Makefile"
build() { make -s -C "$work/proj" clean >/dev/null; local a b; a=$(date +%s.%N); make -s -j2 -C "$work/proj" >/dev/null; b=$(date +%s.%N); echo "$b - $a" | bc -l; }
base=$(for _ in 1 2 3; do build; done | median)
start_sensor --stdout
with=$(for _ in 1 2 3; do build; done | median)
stop_sensor
echo "baseline: $base s, with sensor: $with s, ratio $(echo "$with / $base" | bc -l | cut -c1-5)"
