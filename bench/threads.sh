#!/usr/bin/env bash
# CPU per pipeline stage: runs each netrec binary RUNS times (interleaved) under
# `perf record -e cpu-clock` and prints, per thread name (nr-flows, nr-detect, nr-writer, nr-hash,
# netrec-hosts, nr-merge, and the main thread: reader + decoder), the median milliseconds of CPU.
# The stage with the most CPU bounds the pipeline's wall time once the cores are saturated.
#
#   bench/threads.sh 5 "analyze --quiet --db /tmp/t.sqlite mix-1000000.pcap" ./netrec-old ./netrec-new
#
# Needs `perf` (linux-perf); no hardware counters: cpu-clock sampling at 1 kHz, 1 sample = 1 ms.
set -euo pipefail
runs=$1
args=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq "$runs"); do
    for b in "$@"; do
        rm -f /tmp/t.sqlite /tmp/t.sqlite-wal /tmp/t.sqlite-shm /tmp/t.sqlite-journal
        # shellcheck disable=SC2086 # args is a command line
        perf record -q -e cpu-clock -F 1000 -o "$out/p.data" "$b" $args >/dev/null 2>&1
        perf report -i "$out/p.data" --no-children --sort comm --stdio -n -g none 2>/dev/null |
            awk -v b="$(basename "$b")" '/^ +[0-9.]+%/ {print b, $3, $2}' >>"$out/all"
    done
done
awk '{k=$1" "$2; v[k]=v[k]" "$3} END {for (k in v) print k, v[k]}' "$out/all" | sort |
    while read -r b c rest; do
        med=$(echo "$rest" | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        printf '%-16s %-14s median %6d ms  [%s]\n' "$b" "$c" "$med" "$rest"
    done
