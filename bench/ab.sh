#!/usr/bin/env bash
# Interleaved A/B of netrec binaries on one command line: each binary runs RUNS times, in turn,
# so machine drift hits all alike; prints per binary the median CPU (user + sys) with min and
# max, the median wall time and the peak RSS. Small differences (<10%) are noise on a shared VM.
#
#   bench/ab.sh 7 "flows --format jsonl mix-1000000.pcap" ./netrec-old ./netrec-new
#
# The command may write a database to /tmp/ab.sqlite (deleted before every run).
set -euo pipefail
runs=$1
args=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq "$runs"); do
    for b in "$@"; do
        rm -f /tmp/ab.sqlite /tmp/ab.sqlite-wal /tmp/ab.sqlite-shm /tmp/ab.sqlite-journal
        # shellcheck disable=SC2086 # args is a command line
        /usr/bin/time -o "$out/t" -f "%e %U %S %M" "$b" $args >/dev/null 2>&1
        read -r wall user sys rss <"$out/t"
        echo "$(echo "$user + $sys" | bc) $wall $rss" >>"$out/$(basename "$b")"
    done
done
for b in "$@"; do
    f="$out/$(basename "$b")"
    wall=$(sort -n -k2 "$f" | awk '{ w[NR] = $2 } END { print w[int((NR + 1) / 2)] }')
    sort -n "$f" | awk -v b="$(basename "$b")" -v wall="$wall" '
        { c[NR] = $1; if ($3 > m) m = $3 }
        END {
            printf "%-16s cpu median %.2f (min %.2f max %.2f)  wall median %.2f  rss %d MB\n",
                b, c[int((NR + 1) / 2)], c[1], c[NR], wall, m / 1024
        }'
done
rm -f /tmp/ab.sqlite /tmp/ab.sqlite-wal /tmp/ab.sqlite-shm /tmp/ab.sqlite-journal
