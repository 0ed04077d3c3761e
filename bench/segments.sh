#!/usr/bin/env bash
# Segment size and speed: bytes per packet-header record (segment format 1.0 columns, 1.1
# header-delta coding, 1.2 field coding with 1 MiB and with the default 4 MiB blocks) next to
# `zstd -3` over the first 64 bytes of each packet and over the same snaplen bytes, bytes per
# flow record, and segment write/read records/s of 1.2 and 1.1. One process per capture measures
# everything on the same records (xtask seg-bench, which also checks that every record reads
# back exactly), so the ratios are machine-independent. Captures come from the fixture
# generator (cached, shared with run.sh).
#
# Environment: BENCH_PACKETS (default 1000000), BENCH_KINDS (default "mix synflood"),
# BENCH_DATA (default <repo>/target/bench-data), BENCH_TAG, CARGO_TARGET_DIR,
# BENCH_BASELINE (an older xtask binary: its seg-bench runs right after each case, same load,
# and its rows are printed in a second table).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKETS=${BENCH_PACKETS:-1000000}
KINDS=${BENCH_KINDS:-"mix synflood"}
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HOST=$(hostname -s 2>/dev/null || hostname)
DAY=$(date -u +%Y-%m-%d)
OUT=$ROOT/bench/results/$DAY-$HOST-segments${BENCH_TAG:+-$BENCH_TAG}.md
log() { printf 'segbench: %s\n' "$*" >&2; }

log "building xtask (release) in $TARGET"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet -p xtask)
XTASK=$TARGET/release/xtask
mkdir -p "$DATA"
{
    echo "# netrec segment size and speed ($DAY, $HOST)"
    echo
    echo "Command: \`bash bench/segments.sh\` (BENCH_PACKETS=$PACKETS). snaplen 0 = headers only (L2-L4,"
    echo "cut where the decoder finds the payload). zstd-3 columns: \`zstd -3\` over the concatenated first"
    echo "64 bytes (or snaplen bytes) of every packet, the yardstick of issue #8. Segment bytes exclude the"
    echo "fixed file header and trailer; they include timestamps, lengths and interface columns."
    echo "Write/read rates are wall clock on a shared machine (load average at start:"
    echo "$(cut -d' ' -f1-3 /proc/loadavg)): compare them within one table."
    echo
    first=1
    base_rows=""
    for kind in $KINDS; do
        pcap=$DATA/$kind-$PACKETS.pcap
        if [ ! -s "$pcap" ]; then
            log "generating $pcap"
            "$XTASK" gen-bench --kind "$kind" --packets "$PACKETS" --out "$pcap" >&2
        fi
        for snap in 0 64 128; do
            log "$kind snaplen $snap"
            if [ $first = 1 ]; then
                "$XTASK" seg-bench --pcap "$pcap" --snaplen "$snap" --name "$kind"
                first=0
            else
                "$XTASK" seg-bench --pcap "$pcap" --snaplen "$snap" --name "$kind" | tail -1
            fi
            if [ -n "${BENCH_BASELINE:-}" ]; then
                out=$("$BENCH_BASELINE" seg-bench --pcap "$pcap" --snaplen "$snap" --name "$kind")
                [ -z "$base_rows" ] && base_rows=$(printf '%s' "$out" | head -2)
                base_rows=$(printf '%s\n%s' "$base_rows" "$(printf '%s' "$out" | tail -1)")
            fi
        done
    done
    if [ -n "$base_rows" ]; then
        echo
        echo "Baseline \`$BENCH_BASELINE\` (run right after each case above):"
        echo
        printf '%s\n' "$base_rows"
    fi
    echo
    if command -v softflowd >/dev/null && command -v nfcapd >/dev/null && command -v nfdump >/dev/null; then
        echo "nfdump flow files: \`softflowd -r CAPTURE -v 9\` exports NetFlow v9 over loopback UDP to \`nfcapd\`"
        echo "(default: uncompressed; \`-y\`: LZ4). NetFlow records are unidirectional (about two per netrec"
        echo "bidirectional flow record) and carry less (no TCP state, RTT, retransmissions, per-direction"
        echo "payload). UDP on loopback drops records when softflowd sends faster than nfcapd stores them, so"
        echo "bytes are divided by the records nfcapd actually stored (\`nfdump -I\`)."
        echo
        echo "| capture | nfcapd option | records stored | file bytes | B/record |"
        echo "|---|---|---:|---:|---:|"
        for kind in $KINDS; do
            pcap=$DATA/$kind-$PACKETS.pcap
            for opt in none -y; do
                dir=$(mktemp -d)
                flag=()
                [ "$opt" = none ] || flag=("$opt")
                nfcapd -b 127.0.0.1 -p "${BENCH_NF_PORT:-29996}" -w "$dir" "${flag[@]}" >"$dir.log" 2>&1 &
                pid=$!
                sleep 1
                softflowd -d -r "$pcap" -v 9 -n "127.0.0.1:${BENCH_NF_PORT:-29996}" >/dev/null 2>&1 || true
                sleep 1
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                recs=$(nfdump -R "$dir" -I 2>/dev/null | awk '/^Flows:/ { print $2 }')
                bytes=$(cat "$dir"/nfcapd.* 2>/dev/null | wc -c)
                awk -v k="$kind" -v o="$opt" -v r="${recs:-0}" -v b="$bytes" 'BEGIN {
                    printf "| %s | %s | %d | %d | %s |\n", k, o, r, b, (r > 0) ? sprintf("%.1f", b / r) : "n/a" }'
                rm -rf "$dir" "$dir.log"
            done
        done
    else
        echo "nfdump flow files: not measured (softflowd, nfcapd and nfdump are not installed)."
    fi
} | tee "$OUT"
log "wrote $OUT"
