#!/usr/bin/env bash
# Segment size and speed: bytes per packet-header record (segment format 1.0 columns, and 1.1
# with header-delta coding) next to `zstd -3` over the first 64 bytes of each packet and over
# the same snaplen bytes, bytes per flow record, and segment write/read records/s. One process
# per capture measures everything on the same records (xtask seg-bench), so the ratios are
# machine-independent. Captures come from the fixture generator (cached, shared with run.sh).
#
# Environment: BENCH_PACKETS (default 1000000), BENCH_KINDS (default "mix synflood"),
# BENCH_DATA (default <repo>/target/bench-data), BENCH_TAG, CARGO_TARGET_DIR.
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
    echo
    first=1
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
        done
    done
    echo
    echo "nfdump flow files: not measured (needs softflowd + nfcapd to produce them from a pcap)."
} | tee "$OUT"
log "wrote $OUT"
