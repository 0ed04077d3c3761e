#!/usr/bin/env bash
# What recording costs the host: iperf3 TCP throughput across a veth pair between two network
# namespaces with no program attached, with netrec counting flows only (--snaplen 0), and with
# netrec recording every packet's headers (--snaplen 128). Root only. All traffic stays between
# the script's own namespaces (10.77.250.0/24) and every run is bounded by iperf3 -t.
# Modes alternate within each round so machine drift cancels. See bench/README.md.
#
# Environment:
#   RECBENCH_SECONDS  iperf3 duration per run (default 10)
#   RECBENCH_RUNS     rounds (default 3)
#   RECBENCH_HOOK     tcx (default) or xdp
#   BENCH_NETREC      netrec binary with the eBPF object (default: build with `make build-ebpf`)
#   BENCH_TAG         suffix of the results file name
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${RECBENCH_SECONDS:-10}
RUNS=${RECBENCH_RUNS:-3}
HOOK=${RECBENCH_HOOK:-tcx}
HOST=$(hostname -s 2>/dev/null || hostname)
DAY=$(date -u +%Y-%m-%d)
OUT=$ROOT/bench/results/$DAY-$HOST-recorder${BENCH_TAG:+-$BENCH_TAG}.md
WORK=$(mktemp -d "${TMPDIR:-/tmp}/netrec-recbench.XXXXXX")
NS_A=nrbench-a-$$
NS_B=nrbench-b-$$
cleanup() {
    ip netns pids "$NS_A" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$NS_B" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf 'recbench: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "needs root (network namespaces, eBPF)"; exit 2; }
if ! command -v iperf3 >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then
    log "installing iperf3 jq"
    DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 jq >"$WORK/apt.log" 2>&1 \
        || { apt-get update >>"$WORK/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 jq >>"$WORK/apt.log" 2>&1; } \
        || { cat "$WORK/apt.log" >&2; exit 2; }
fi

if [ -n "${BENCH_NETREC:-}" ]; then
    NETREC=$BENCH_NETREC
else
    log "building netrec with the eBPF programs (make build-ebpf)"
    make -C "$ROOT" --no-print-directory build-ebpf >&2
    NETREC=${CARGO_TARGET_DIR:-$ROOT/target}/release/netrec
fi

ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add nrbench-a netns "$NS_A" type veth peer name nrbench-b netns "$NS_B"
ip -n "$NS_A" addr add 10.77.250.1/24 dev nrbench-a
ip -n "$NS_B" addr add 10.77.250.2/24 dev nrbench-b
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_A" link set nrbench-a up
ip -n "$NS_B" link set nrbench-b up
ip netns exec "$NS_A" iperf3 -s -B 10.77.250.1 -D -I "$WORK/iperf3.pid" >/dev/null
sleep 0.5

# One iperf3 run; prints "bits_per_second retransmits".
iperf_run() {
    ip netns exec "$NS_B" timeout $((SECONDS_PER_RUN + 20)) \
        iperf3 -c 10.77.250.1 -t "$SECONDS_PER_RUN" -J >"$WORK/iperf.json"
    jq -r '"\(.end.sum_received.bits_per_second) \(.end.sum_sent.retransmits // 0)"' "$WORK/iperf.json"
}

# mode -> netrec arguments (empty = no program)
run_mode() {
    local mode=$1 round=$2 snaplen pid res summary
    case $mode in
        none) iperf_run; echo "- -" ; return ;;
        flows) snaplen=0 ;;
        headers) snaplen=128 ;;
    esac
    local dir=$WORK/segs-$mode-$round
    ip netns exec "$NS_A" "$NETREC" record -i nrbench-a -o "$dir" --snaplen "$snaplen" --hook "$HOOK" \
        --status never --duration $((SECONDS_PER_RUN + 30))s 2>"$WORK/rec.err" &
    pid=$!
    # Attached once the first segment is open.
    for _ in $(seq 1 200); do
        compgen -G "$dir/*.partial" >/dev/null && break
        sleep 0.05
    done
    res=$(iperf_run)
    kill -INT "$pid"
    wait "$pid" || { cat "$WORK/rec.err" >&2; exit 2; }
    summary=$(grep 'recorded' "$WORK/rec.err")
    # "recorded N packets (K counted by the kernel, D ring drops)"
    local nums
    nums=$(echo "$summary" | grep -oE '[0-9]+' | head -3 | tr '\n' ' ')
    echo "$res"
    echo "$nums" | awk '{print $2, $3}'
}

declare -A BPS RETR KPKTS DROPS
for round in $(seq 1 "$RUNS"); do
    # Rotate the order each round.
    case $((round % 3)) in
        1) order="none flows headers" ;;
        2) order="flows headers none" ;;
        0) order="headers none flows" ;;
    esac
    for mode in $order; do
        out=$(run_mode "$mode" "$round")
        read -r bps retr <<<"$(echo "$out" | sed -n 1p)"
        read -r kp dr <<<"$(echo "$out" | sed -n 2p)"
        BPS[$mode]+="$bps "
        RETR[$mode]+="$retr "
        KPKTS[$mode]+="$kp "
        DROPS[$mode]+="$dr "
        log "round $round $mode: $(awk -v b="$bps" 'BEGIN{printf "%.2f Gbit/s", b/1e9}') retr=$retr kernel_packets=$kp ring_drops=$dr"
    done
done

# Numbers of a space-separated list, one per line, sorted ("-" entries dropped).
nums() { tr ' ' '\n' | awk '/^[0-9.eE+-]+$/ && $1 != "-"' | sort -g; }
median() { nums | awk '{a[NR]=$1} END{ if (NR==0) {print "-"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }
base=$(echo "${BPS[none]}" | median)
{
    echo "# netrec recorder overhead: iperf3 TCP across a veth pair ($DAY, $HOST)"
    echo
    echo "Command: \`sudo bash bench/recorder.sh\` (RECBENCH_SECONDS=$SECONDS_PER_RUN, RECBENCH_RUNS=$RUNS, hook $HOOK)."
    echo "Kernel $(uname -r), $(nproc) CPUs. Each round runs the three modes in rotated order."
    echo
    echo "| mode | netrec computes | median Gbit/s | min | max | vs no program | median kernel packets | ring drops (all runs) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for mode in none flows headers; do
        what=$(case $mode in none) echo "nothing attached";; flows) echo "per-flow counters in the kernel map, no ring records (--snaplen 0)";; headers) echo "flow counters + every packet's first 128 bytes to segments + live detection";; esac)
        med=$(echo "${BPS[$mode]}" | median)
        min=$(echo "${BPS[$mode]}" | nums | head -1)
        max=$(echo "${BPS[$mode]}" | nums | tail -1)
        kp=$(echo "${KPKTS[$mode]}" | median)
        dr=$(echo "${DROPS[$mode]}" | nums | awk '{s+=$1} END{print (NR? s : "-")}')
        printf '| %s | %s | %.2f | %.2f | %.2f | %.3f | %s | %s |\n' "$mode" "$what" \
            "$(awk -v v="$med" 'BEGIN{print v/1e9}')" "$(awk -v v="$min" 'BEGIN{print v/1e9}')" \
            "$(awk -v v="$max" 'BEGIN{print v/1e9}')" "$(awk -v v="$med" -v b="$base" 'BEGIN{print v/b}')" "$kp" "$dr"
    done
    echo
    echo "Veth TCP uses GSO/GRO: one 'packet' the hooks see can carry up to 64 KiB, so the packet rate is"
    echo "far below the bit rate / 1500. Ring drops are header records the kernel could not queue (counted)."
} | tee "$OUT"
log "wrote $OUT"
