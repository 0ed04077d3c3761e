#!/usr/bin/env bash
# netrec throughput benchmark against tcpdump, tshark and argus on generated captures.
# Idempotent: installs only missing tools, generates each capture once (cached), rebuilds netrec
# through cargo (a no-op when up to date). See bench/README.md.
#
# Environment:
#   BENCH_PACKETS  packets per capture (default 1000000)
#   BENCH_RUNS     runs per case (default 3)
#   BENCH_CASES    space-separated subset of case names to run (default: all; see CASES below)
#   BENCH_KINDS    captures to use (default "mix synflood mix:10000000"); KIND:N overrides the
#                  packet count of one capture (the 10M-packet mix is ~7.3 GB)
#   BENCH_BIG_RUNS runs per case on captures of more than 2M packets (default 2)
#   BENCH_TAG      suffix of the results file name (e.g. "after-sha-thread")
#   BENCH_BASELINE path of another netrec binary (e.g. a copy of the release build before a change):
#                  its flows/alerts/analyze cases run too, interleaved, for before/after in one run
#   BENCH_DATA     capture cache directory (default <repo>/target/bench-data)
#   BENCH_NETREC   use this netrec binary instead of building one (the xtask is still built)
#   CARGO_TARGET_DIR  where cargo builds (default <repo>/target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKETS=${BENCH_PACKETS:-1000000}
RUNS=${BENCH_RUNS:-3}
KINDS=${BENCH_KINDS:-"mix synflood mix:10000000"}
BIG_RUNS=${BENCH_BIG_RUNS:-2}
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HOST=$(hostname -s 2>/dev/null || hostname)
DAY=$(date -u +%Y-%m-%d)
OUT=$ROOT/bench/results/$DAY-$HOST${BENCH_TAG:+-$BENCH_TAG}.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/netrec-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

# ---- 1. peers -------------------------------------------------------------------------------
install_missing() {
    local missing=() cmd pkg
    for pair in tshark:tshark tcpdump:tcpdump argus:argus-server ra:argus-client /usr/bin/time:time \
        softflowd:softflowd nfcapd:nfdump; do
        cmd=${pair%%:*} pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1 \
        || { "${sudo[@]}" apt-get update >>"$WORK/apt.log" 2>&1 \
             && "${sudo[@]}" apt-get install -y "${missing[@]}" >>"$WORK/apt.log" 2>&1; } \
        || { cat "$WORK/apt.log" >&2; log "apt-get install failed"; exit 2; }
}
install_missing

# ---- 2. build -------------------------------------------------------------------------------
if [ -n "${BENCH_NETREC:-}" ]; then
    log "building xtask (release) in $TARGET; netrec is $BENCH_NETREC"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet -p xtask)
    NETREC=$BENCH_NETREC
else
    log "building netrec and xtask (release) in $TARGET"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet -p netrec -p xtask)
    NETREC=$TARGET/release/netrec
fi
XTASK=$TARGET/release/xtask

# ---- 3. captures (cached) -------------------------------------------------------------------
mkdir -p "$DATA"
# A kind is "mix" or "synflood", optionally ":N" packets (default BENCH_PACKETS).
kind_name() { echo "${1%%:*}"; }
kind_packets() { case $1 in *:*) echo "${1#*:}" ;; *) echo "$PACKETS" ;; esac; }
capture() { echo "$DATA/$(kind_name "$1")-$(kind_packets "$1").pcap"; }
for kind in $KINDS; do
    f=$(capture "$kind")
    if [ ! -s "$f" ]; then
        log "generating $f"
        "$XTASK" gen-bench --kind "$(kind_name "$kind")" --packets "$(kind_packets "$kind")" --out "$f.tmp" >&2
        mv "$f.tmp" "$f"
    fi
done

# ---- 4. cases -------------------------------------------------------------------------------
# name|tool label|what it computes. The command is built by case_cmd.
CASES=(
    "netrec-flows|netrec flows --format jsonl|decode + bidirectional flow table (TCP state, RTT, retrans), JSONL of every flow"
    "netrec-alerts|netrec alerts --format jsonl|flows + every detector of the default rule pack, JSONL alerts"
    "netrec-analyze|netrec analyze --quiet|flows + detection + SHA-256 of the file + SQLite (flows, alerts, time series)"
    "tcpdump|tcpdump -r F -w /dev/null|read floor: parse pcap records and copy them out, no decoding"
    "tshark|tshark -q -z conv,tcp -z conv,udp|full dissection of every packet + TCP/UDP conversation tables"
    "argus|argus -X -r F -w /dev/null|bidirectional flow records (argus defaults, config cleared with -X)"
    "softflowd|softflowd -r F -n 127.0.0.1:PORT (nfcapd collecting)|unidirectional NetFlow v9 flow export; nfcapd (not timed) writes nfdump files"
)
if [ -n "${BENCH_BASELINE:-}" ]; then
    [ -x "$BENCH_BASELINE" ] || { log "BENCH_BASELINE=$BENCH_BASELINE is not an executable"; exit 2; }
    BASE_NAME=$(basename "$BENCH_BASELINE")
    CASES+=(
        "base-flows|$BASE_NAME flows --format jsonl|baseline binary: same as netrec flows"
        "base-alerts|$BASE_NAME alerts --format jsonl|baseline binary: same as netrec alerts"
        "base-analyze|$BASE_NAME analyze --quiet|baseline binary: same as netrec analyze"
    )
fi
if [ -n "${BENCH_CASES:-}" ]; then
    sel=()
    for c in "${CASES[@]}"; do
        for want in $BENCH_CASES; do [ "${c%%|*}" = "$want" ] && sel+=("$c"); done
    done
    CASES=("${sel[@]}")
fi

# Prints the command of case $1 on file $2, one argument per line.
case_cmd() {
    case $1 in
        netrec-flows) printf '%s\n' "$NETREC" flows "$2" --format jsonl ;;
        netrec-alerts) printf '%s\n' "$NETREC" alerts "$2" --format jsonl ;;
        netrec-analyze) printf '%s\n' "$NETREC" analyze "$2" --db "$WORK/bench.sqlite" --quiet ;;
        tcpdump) printf '%s\n' tcpdump -r "$2" -w /dev/null ;;
        tshark) printf '%s\n' tshark -q -z conv,tcp -z conv,udp -r "$2" ;;
        argus) printf '%s\n' argus -X -r "$2" -w /dev/null ;;
        softflowd) printf '%s\n' softflowd -d -r "$2" -v 9 -n "127.0.0.1:$NF_PORT" ;;
        base-flows) printf '%s\n' "$BENCH_BASELINE" flows "$2" --format jsonl ;;
        base-alerts) printf '%s\n' "$BENCH_BASELINE" alerts "$2" --format jsonl ;;
        base-analyze) printf '%s\n' "$BENCH_BASELINE" analyze "$2" --db "$WORK/bench.sqlite" --quiet ;;
    esac
}

# Run one case once; appends "wall user sys maxrss_kib" to $WORK/<kind>.<case>.
run_once() {
    local kind=$1 name=$2 f cmd=()
    f=$(capture "$kind")
    mapfile -t cmd < <(case_cmd "$name" "$f")
    rm -f "$WORK/bench.sqlite" "$WORK/bench.sqlite-wal" "$WORK/bench.sqlite-shm" "$WORK/bench.sqlite-journal"
    # /usr/bin/time measures the tool itself (no shell in between); stdout is discarded.
    if ! /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "${cmd[@]}" >/dev/null 2>"$WORK/stderr"; then
        log "FAILED: ${cmd[*]}"
        cat "$WORK/stderr" >&2
        exit 2
    fi
    cat "$WORK/time" >>"$WORK/$kind.$name"
    # Keep netrec's own summary line (packet and flow counts) as a sanity check.
    if [ "$name" = netrec-flows ]; then grep '^netrec:' "$WORK/stderr" >"$WORK/$kind.summary" || true; fi
}

# softflowd exports to an nfcapd on loopback (only loopback: nothing leaves the machine).
NF_PORT=${BENCH_NF_PORT:-29995}
NFCAPD_PID=""
if printf '%s\n' "${CASES[@]}" | grep -q '^softflowd|'; then
    mkdir -p "$WORK/nfcapd"
    nfcapd -b 127.0.0.1 -p "$NF_PORT" -w "$WORK/nfcapd" >"$WORK/nfcapd.log" 2>&1 &
    NFCAPD_PID=$!
    trap 'kill $NFCAPD_PID 2>/dev/null; rm -rf "$WORK"' EXIT
    sleep 1
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for kind in $KINDS; do
    runs=$RUNS
    [ "$(kind_packets "$kind")" -gt 2000000 ] && runs=$BIG_RUNS
    # Warm the page cache: otherwise the first case reads the capture from disk and no other
    # case does (a 10M-packet netrec flows run took 21 s cold and 4.3 s warm).
    log "$kind: reading the capture once into the page cache"
    cat "$(capture "$kind")" >/dev/null
    for ((r = 0; r < runs; r++)); do
        # Rotate the case order each run so that drift (thermal, other load) spreads over all tools.
        n=${#CASES[@]}
        for ((i = 0; i < n; i++)); do
            c=${CASES[$(((i + r) % n))]}
            name=${c%%|*}
            log "$kind run $((r + 1))/$runs: $name"
            run_once "$kind" "$name"
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 5. table -------------------------------------------------------------------------------
# stats FILE COLUMN-EXPR -> "median min max" of the per-run values.
stats() {
    awk "{ print $2 }" "$1" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%s %s %s\n", m, v[1], v[NR] }'
}

{
    echo "# netrec benchmark, $DAY, $HOST"
    echo
    echo "- commit: \`$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo '-dirty')\`"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; kernel $(uname -r)"
    echo "- load average before/after: $LOAD_BEFORE / $LOAD_AFTER (the machine is shared: compare ratios within one file)"
    echo "- $RUNS runs per case ($BIG_RUNS on captures of more than 2M packets), case order rotated each run, after one read of the capture into the page cache; wall = elapsed, CPU = user+sys, RSS = peak (max over runs)"
    echo "- tools: $(tcpdump --version 2>&1 | head -1); $(tshark --version 2>/dev/null | head -1 | sed 's/ (.*//'); argus $(argus -h 2>&1 | sed -n 's/^Argus Version //p' | head -1)"
    echo "- vs analyze = median wall / median wall of \`netrec analyze\` on the same capture (above 1: slower than"
    echo "  netrec's full analysis); vs flows = the same against \`netrec flows\`; CPU vs analyze = the same with"
    echo "  CPU time (user+sys), steadier than wall time when the machine is loaded"
    echo
    for kind in $KINDS; do
        f=$(capture "$kind")
        size=$(stat -c %s "$f")
        pk=$(kind_packets "$kind")
        echo "## $(kind_name "$kind"): $(basename "$f"), $pk packets, $(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB"
        echo
        [ -s "$WORK/$kind.summary" ] && sed 's/^/    /' "$WORK/$kind.summary" && echo
        echo "| tool | what it computes | wall median s | wall min–max s | CPU median s | packets/s | MB/s | peak RSS MiB | vs analyze | vs flows | CPU vs analyze |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        base="" fbase="" cbase=""
        if [ -s "$WORK/$kind.netrec-analyze" ]; then
            base=$(stats "$WORK/$kind.netrec-analyze" '$1' | cut -d' ' -f1)
            cbase=$(stats "$WORK/$kind.netrec-analyze" '$2 + $3' | cut -d' ' -f1)
        fi
        if [ -s "$WORK/$kind.netrec-flows" ]; then
            fbase=$(stats "$WORK/$kind.netrec-flows" '$1' | cut -d' ' -f1)
        fi
        for c in "${CASES[@]}"; do
            IFS='|' read -r name label what <<<"$c"
            read -r wmed wmin wmax < <(stats "$WORK/$kind.$name" '$1')
            read -r cmed _ _ < <(stats "$WORK/$kind.$name" '$2 + $3')
            read -r _ _ rss < <(stats "$WORK/$kind.$name" '$4')
            awk -v label="$label" -v what="$what" -v wmed="$wmed" -v wmin="$wmin" -v wmax="$wmax" \
                -v cmed="$cmed" -v rss="$rss" -v pk="$pk" -v size="$size" -v base="$base" -v fbase="$fbase" \
                -v cbase="$cbase" 'BEGIN {
                w = (wmed > 0) ? wmed : 0.01
                ratio = (base != "" && base > 0) ? sprintf("%.2f", wmed / base) : "n/a"
                fratio = (fbase != "" && fbase > 0) ? sprintf("%.2f", wmed / fbase) : "n/a"
                cratio = (cbase != "" && cbase > 0) ? sprintf("%.2f", cmed / cbase) : "n/a"
                printf "| `%s` | %s | %.2f | %.2f–%.2f | %.2f | %.0f | %.1f | %.0f | %s | %s | %s |\n",
                    label, what, wmed, wmin, wmax, cmed, pk / w, size / 1e6 / w, rss / 1024, ratio, fratio, cratio }'
        done
        echo
    done
} >"$WORK/table.md"

mkdir -p "$(dirname "$OUT")"
cp "$WORK/table.md" "$OUT"
cat "$WORK/table.md"
log "written to $OUT"
