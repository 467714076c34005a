#!/usr/bin/env bash
# Benchmarks lanner-capture on this machine (root), each figure against its target:
#   rate       events/s the kernel side delivers to userspace on one core with zero
#              drops (target >= 1 M/s): the sensor, pinned to CPU 0, is stopped (SIGSTOP)
#              while a generator on CPU 1 fills a 256 MiB ring with RATE_EVENTS
#              header-only records (prctl); then it is continued and timed until it has
#              read them all (--max-events) and exited: --count-only reads and counts,
#              --decode-only also decodes each record into an event. Timing the drain
#              measures the reader, not the generator (which this machine's load slows);
#   openclose  an open/close loop on CPU 1, with vs without the sensor (target <= 1.5x):
#              the loop's CPU time (user + system, which includes the eBPF programs that
#              run in its syscalls) and its wall time, plus the sensor's own CPU;
#   build      compiling a small C project with make -j2, with vs without (target <= 5 %):
#              wall time, the build's CPU time, and the sensor's CPU time.
# On a saturated machine wall time mostly measures time-sharing (anything that uses CPU
# anywhere slows everything), so the CPU-time ratios are the figures to compare.
# The machine may be noisy: "with" and "without" runs alternate in pairs (ABBA order),
# and each figure is the median with the range. The sensor runs on CPU 0 with one of two
# outputs: "stdout" (--stdout to /dev/null: every event decoded and rendered as JSON
# lines) or "publish", the production path (binary batches published to a JetStream
# stream of a nats-server this script starts on CPU 0 with file storage in its temporary
# directory; that server's CPU is reported apart: in a deployment NATS does not run on
# every node).
#   capture/tests/bench/run.sh [path/to/lanner-capture]   (default: release build)
# Environment: SECTIONS ("rate openclose build"), PAIRS (7), ITERS (500000),
# RATE_EVENTS (1500000), RATE_RUNS (3), BUILD_PAIRS (3), BUILD_FILES (60),
# OC_MODES ("all filtered publish": everything recorded to stdout, read-only opens
# dropped in the kernel to stdout, everything recorded and published), BUILD_OUTS
# ("stdout publish").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/c-project.sh"
bin=${1:-${CARGO_TARGET_DIR:-$here/../../../target}/release/lanner-capture}
sections=${SECTIONS:-rate openclose build}
pairs=${PAIRS:-7}
iters=${ITERS:-500000}
rate_events=${RATE_EVENTS:-1500000}
rate_runs=${RATE_RUNS:-3}
build_pairs=${BUILD_PAIRS:-3}
build_files=${BUILD_FILES:-60}
oc_modes=${OC_MODES:-all filtered publish}
build_outs=${BUILD_OUTS:-stdout publish}
work=$(mktemp -d)
sensor=
nats=
trap '[[ -n $sensor ]] && kill -INT $sensor 2>/dev/null; [[ -n $nats ]] && kill $nats 2>/dev/null; wait; rm -rf "$work"' EXIT
[[ $(id -u) == 0 ]] || { echo "needs root (loads eBPF programs)"; exit 1; }
[[ -x $bin ]] || { echo "no sensor binary at $bin (cargo build --release -p lanner-capture)"; exit 1; }
gcc -O2 -o "$work/openclose" "$here/openclose.c"
gcc -O2 -o "$work/events" "$here/events.c"
touch "$work/target"
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# median and range of numbers on stdin: "median (min-max)"
stats() { sort -g | awk '{a[NR]=$1} END {printf "%s (%s-%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }

start_sensor() { # flags...; waits until attached; the sensor runs on CPU 0
    taskset -c 0 "$bin" --node bench "$@" >/dev/null 2>"$work/sensor.log" &
    sensor=$!
    for _ in $(seq 1 600); do
        grep -q "process table seeded" "$work/sensor.log" && return
        kill -0 "$sensor" 2>/dev/null || break
        sleep 0.1
    done
    echo "sensor did not start:"; cat "$work/sensor.log"; exit 1
}
# CPU seconds the sensor used so far (utime + stime of /proc/<pid>/stat).
sensor_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$sensor/stat"; }
# Stops the sensor (unless it exited) and puts "records dropped" from its summary line
# in $work/summary.
stop_sensor() {
    kill -INT "$sensor" 2>/dev/null || true; wait "$sensor" || true; sensor=
    summary >"$work/summary"
}
summary() {
    sed 's/\x1b\[[0-9;]*m//g' "$work/sensor.log" | grep -o "sensor stopped.*" |
        sed -E 's/sensor stopped: ([0-9]+) records.*kernel ring ([0-9]+) \+ kernel pending ([0-9]+) \+ queue ([0-9]+) \+ NATS buffer ([0-9]+).*/\1 \2 \3 \4 \5/' |
        awk '{print $1, $2 + $3 + $4 + $5}'
}
now() { date +%s.%N; }
# Sensor flags of an output: stdout (JSON lines to /dev/null) or publish (NATS).
out_flags() {
    if [[ $1 == publish ]]; then
        echo "--nats-url nats://127.0.0.1:$nats_port --stream-max-bytes 268435456"
    else
        echo "--stdout"
    fi
}
nats_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$nats/stat"; }
if [[ " $oc_modes $build_outs " == *" publish "* ]]; then
    command -v nats-server >/dev/null || { echo "publish needs nats-server on PATH"; exit 1; }
    nats_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    taskset -c 0 nats-server -js -sd "$work/nats" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
    nats=$!
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
        sleep 0.1
    done
fi

if [[ " $sections " == *" rate "* ]]; then
    echo "== rate: $rate_events prctl records per run, read by the sensor on CPU 0 (target >= 1000000/s, 0 drops)"
    for mode in --count-only --decode-only; do
        : >"$work/rates"
        for _ in $(seq "$rate_runs"); do
            start_sensor --stdout "$mode" --ring-bytes 268435456 --max-events "$rate_events"
            kill -STOP "$sensor"
            produced=$(taskset -c 1 "$work/events" "$rate_events")
            t0=$(now); kill -CONT "$sensor"; wait "$sensor" || true; t1=$(now); sensor=
            read -r records dropped < <(summary)
            rate=$(awk -v n="$records" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
            echo "  $mode: generator $produced/s; sensor read $records records in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s = $rate/s, $dropped dropped"
            [[ $dropped == 0 && $records -ge $rate_events ]] && echo "$rate" >>"$work/rates"
        done
        if [[ -s $work/rates ]]; then
            echo "$mode: $(stats <"$work/rates") events/s with zero drops ($(wc -l <"$work/rates") of $rate_runs runs lossless)"
        else
            echo "$mode: no lossless run"
        fi
    done
fi

if [[ " $sections " == *" openclose "* ]]; then
    echo "== open/close: $iters iterations on CPU 1, ns per iteration, $pairs interleaved pairs per mode (target <= 1.5x)"
    loop() { taskset -c 1 "$work/openclose" "$work/target" "$iters"; }
    for mode in $oc_modes; do
        if [[ $mode == publish ]]; then
            read -ra flags < <(out_flags publish)
        else
            flags=(--stdout)
        fi
        [[ $mode == filtered ]] && flags+=(--drop-read-only-opens)
        for f in base_wall base_cpu with_wall with_cpu ratios drops sensor_cpu nats_cpu; do : >"$work/$f"; done
        for p in $(seq "$pairs"); do
            order="base with"; ((p % 2 == 0)) && order="with base"
            for side in $order; do
                if [[ $side == base ]]; then
                    read -r bw bc < <(loop); echo "$bw" >>"$work/base_wall"; echo "$bc" >>"$work/base_cpu"
                else
                    start_sensor "${flags[@]}"; c0=$(sensor_cpu)
                    [[ $mode == publish ]] && n0=$(nats_cpu)
                    read -r ww wc < <(loop)
                    sleep 0.5; c1=$(sensor_cpu) # what the sensor spent on these events
                    [[ $mode == publish ]] && awk -v a="$n0" -v b="$(nats_cpu)" -v n="$iters" 'BEGIN {printf "%.0f\n", (b - a) * 1e9 / n}' >>"$work/nats_cpu"
                    stop_sensor; read -r _ dropped <"$work/summary"
                    echo "$ww" >>"$work/with_wall"; echo "$wc" >>"$work/with_cpu"; echo "$dropped" >>"$work/drops"
                    awk -v a="$c0" -v b="$c1" -v n="$iters" 'BEGIN {printf "%.0f\n", (b - a) * 1e9 / n}' >>"$work/sensor_cpu"
                fi
            done
            echo "$(ratio "$wc" "$bc")" >>"$work/ratios"
            echo "  pair $p: without $bw wall / $bc cpu, with $ww wall / $wc cpu ns/iter; sensor $(tail -1 "$work/sensor_cpu") cpu ns/event, $(tail -1 "$work/drops") dropped"
        done
        echo "$mode (${flags[*]}): loop CPU without $(stats <"$work/base_cpu"), with $(stats <"$work/with_cpu") ns/iter:" \
            "ratio of medians $(ratio "$(median <"$work/with_cpu")" "$(median <"$work/base_cpu")")x (per pair $(stats <"$work/ratios"));" \
            "wall without $(stats <"$work/base_wall"), with $(stats <"$work/with_wall") ns/iter: $(ratio "$(median <"$work/with_wall")" "$(median <"$work/base_wall")")x;" \
            "sensor CPU $(stats <"$work/sensor_cpu") ns per event; dropped per run $(stats <"$work/drops")" \
            "$([[ -s $work/nats_cpu ]] && echo "; nats-server CPU $(stats <"$work/nats_cpu") ns per event")"
    done
fi

if [[ " $sections " == *" build "* ]]; then
    echo "== C build: make -j2 of $build_files generated files (gcc -O2), seconds, $build_pairs interleaved pairs (target <= 5 %)"
    c_project "$work/proj" "$build_files"
    build() { # prints "wall cpu" seconds (cpu = user + system of make and its children)
        make -s -C "$work/proj" clean >/dev/null
        /usr/bin/time -f "%e %U %S" -o "$work/time" make -s -j2 -C "$work/proj" >/dev/null
        awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$work/time"
    }
    build >/dev/null # warm the page cache
    for out in $build_outs; do
    read -ra flags < <(out_flags "$out")
    for f in base_wall base_cpu with_wall with_cpu wratios cratios drops sensor_cpu nats_cpu records; do : >"$work/$f"; done
    for p in $(seq "$build_pairs"); do
        order="base with"; ((p % 2 == 0)) && order="with base"
        for side in $order; do
            if [[ $side == base ]]; then
                read -r bw bc < <(build); echo "$bw" >>"$work/base_wall"; echo "$bc" >>"$work/base_cpu"
            else
                start_sensor "${flags[@]}"; c0=$(sensor_cpu)
                [[ $out == publish ]] && n0=$(nats_cpu)
                read -r ww wc < <(build)
                sleep 0.5; c1=$(sensor_cpu)
                [[ $out == publish ]] && awk -v a="$n0" -v b="$(nats_cpu)" 'BEGIN {printf "%.2f\n", b - a}' >>"$work/nats_cpu"
                stop_sensor; read -r records dropped <"$work/summary"
                echo "$ww" >>"$work/with_wall"; echo "$wc" >>"$work/with_cpu"; echo "$dropped" >>"$work/drops"
                echo "$records" >>"$work/records"
                sc=$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}'); echo "$sc" >>"$work/sensor_cpu"
            fi
        done
        echo "$(ratio "$ww" "$bw")" >>"$work/wratios"
        echo "$(ratio "$(awk -v a="$wc" -v b="$sc" 'BEGIN {print a + b}')" "$bc")" >>"$work/cratios"
        echo "  pair $p ($out): without $bw s wall / $bc s cpu, with $ww s wall / $wc s cpu + sensor $sc s cpu ($records events, from every process of the machine)"
    done
    echo "build (${flags[*]}, nothing filtered): wall without $(stats <"$work/base_wall"), with $(stats <"$work/with_wall") s: $(ratio "$(median <"$work/with_wall")" "$(median <"$work/base_wall")")x (per pair $(stats <"$work/wratios"));" \
        "build CPU without $(stats <"$work/base_cpu"), with $(stats <"$work/with_cpu") s: $(ratio "$(median <"$work/with_cpu")" "$(median <"$work/base_cpu")")x;" \
        "build + sensor CPU vs build CPU per pair $(stats <"$work/cratios"); sensor CPU $(stats <"$work/sensor_cpu") s for $(stats <"$work/records") events; dropped per run $(stats <"$work/drops")" \
        "$([[ -s $work/nats_cpu ]] && echo "; nats-server CPU $(stats <"$work/nats_cpu") s")"
    done
fi
