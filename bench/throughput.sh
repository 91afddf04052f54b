#!/usr/bin/env bash
# Throughput: end-to-end messages per second through the gateway, against Postfix
# as a plain relay under the same load, in the same run.
#
#   bench/throughput.sh                 # 3 runs of 10,000 messages
#   RUNS=1 MESSAGES=2000 bench/throughput.sh
#
# Each run starts fresh instances of both sides, each with its own smtp-sink
# downstream:
#
#   smtp-source -s 20 -m 10000 -l 5120 ─▶ portcullis ─▶ smtp-sink
#   smtp-source -s 20 -m 10000 -l 5120 ─▶ postfix    ─▶ smtp-sink
#
# The clock starts when smtp-source starts and stops when the sink has counted
# all messages (smtp-sink -c, one "mesg=" per completed DATA), so queueing and
# delivery are included. The sides take turns going first, each after a sync and
# a pause so it does not pay for the other's disk writes. For the gateway, the
# histogram portcullis_smtp_data_reply_seconds (end of DATA to the 250, fsync
# included) is read from /metrics before and after; p50/p99 are bucket upper
# bounds. The run fails if a sink receives more or fewer messages than were sent.
#
# Output: one line per run and a summary, also in bench/results/throughput-<UTC>/
# (summary.txt, runs.jsonl, and per side the smtp-source output, histogram and
# the gateway's warnings).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-5120}
TIMEOUT=${TIMEOUT:-900}          # seconds a side may take before the run fails
SETTLE=${SETTLE:-5}              # seconds of quiet after sync before each side
FROM=sender@bench.test
TO=rcpt@example.test             # example.test is the gateway's [[domains]] entry
OUT=${OUT:-$BENCH_DIR/results/throughput-$(date -u +%Y%m%dT%H%M%SZ)}

bench_init
mkdir -p "$OUT"
{
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
    echo "kernel: $(uname -r)  postfix: $(postconf -d -h mail_version)"
    echo "binary: $(binary_info)"
    echo "load: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE, $RUNS runs"
} | tee "$OUT/summary.txt" >&2

now() { date +%s.%N; }

# measure SIDE PORT SINK: sends the load to PORT, waits until SINK has it all.
# Sets ELAPSED (start to last message at the sink) and INJECTED (smtp-source's run).
measure() {
    local side=$1 port=$2 sink=$3 t0 t1 ti n last=0 stalled=0
    # Start from a settled disk: the previous side's writeback (and, with the
    # discard mount option, its deleted queue files) must not land on this one.
    sync; sleep "$SETTLE"
    LOADAVG=$(cut -d' ' -f1 /proc/loadavg)     # the machine is shared: note how busy
    t0=$(now)
    run_bg "$OUT/$side.smtp-source.txt" \
        smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$FROM" -t "$TO" "127.0.0.1:$port" \
        || die "$side: smtp-source failed: $(tail -3 "$OUT/$side.smtp-source.txt")"
    ti=$(now)
    while :; do
        n=$(sink_count "$sink")
        [ "$n" -ge "$MESSAGES" ] && break
        if [ "$n" = "$last" ]; then stalled=$((stalled + 1)); else stalled=0; last=$n; fi
        [ "$stalled" -lt $((TIMEOUT * 20)) ] || die "$side: sink stuck at $n of $MESSAGES"
        sleep 0.05
    done
    t1=$(now)
    sleep 2                     # anything more arriving would be a duplicate
    n=$(sink_count "$sink")
    [ "$n" = "$MESSAGES" ] || die "$side: the sink received $n messages for $MESSAGES sent"
    ELAPSED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$t0" "$t1")
    INJECTED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$t0" "$ti")
}

run_portcullis() {
    local r=$1 smtp http sink
    read -r smtp http sink <<<"$(free_ports 3)"
    start_sink "gw$r-sink" "$sink"
    gateway_config "gw$r" "$smtp" "$http" "$sink"
    start_gateway "gw$r" "$http"
    curl -sf "http://127.0.0.1:$http/metrics" >"$OUT/run$r-portcullis.metrics-before.txt"
    measure "run$r-portcullis" "$smtp" "gw$r-sink"
    curl -sf "http://127.0.0.1:$http/metrics" >"$OUT/run$r-portcullis.metrics-after.txt"
    python3 "$BENCH_DIR/histogram.py" "$OUT/run$r-portcullis.metrics-before.txt" \
        "$OUT/run$r-portcullis.metrics-after.txt" >"$OUT/run$r-portcullis.histogram.json"
    local q
    q=$(queue_messages "$http")
    [ "$q" = 0 ] || die "portcullis: $q messages still queued after the sink had them all"
    # Warnings and errors, but not the expected one about the self-signed certificate.
    grep -E ' (WARN|ERROR) ' "$WORK/gw$r.log" | grep -v 'no TLS certificate configured' \
        >"$OUT/run$r-portcullis.warnings.txt" || true
    kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true
    PC_EL=$ELAPSED PC_INJ=$INJECTED PC_LOAD=$LOADAVG
}

run_postfix() {
    local r=$1 smtp sink
    read -r smtp sink <<<"$(free_ports 2)"
    start_sink "pf$r-sink" "$sink"
    start_postfix "pf$r" "$smtp" "$sink"
    measure "run$r-postfix" "$smtp" "pf$r-sink"
    "$POSTFIX_RELAY" stop "$WORK/pf$r"
    grep -Ec 'status=(deferred|bounced)' "$WORK/pf$r/maillog" >"$OUT/run$r-postfix.not-sent.txt" || true
    PF_EL=$ELAPSED PF_INJ=$INJECTED PF_LOAD=$LOADAVG
}

for r in $(seq 1 "$RUNS"); do
    if [ $((r % 2)) = 1 ]; then
        log "run $r: portcullis"; run_portcullis "$r"
        log "run $r: postfix";    run_postfix "$r"
    else
        log "run $r: postfix";    run_postfix "$r"
        log "run $r: portcullis"; run_portcullis "$r"
    fi
    python3 - "$r" "$MESSAGES" "$PC_EL" "$PC_INJ" "$PF_EL" "$PF_INJ" \
        "$OUT/run$r-portcullis.histogram.json" "$OUT/run$r-portcullis.warnings.txt" "$PC_LOAD" "$PF_LOAD" \
        >>"$OUT/runs.jsonl" <<'PY'
import json, sys
r, n = int(sys.argv[1]), int(sys.argv[2])
pc_el, pc_inj, pf_el, pf_inj = map(float, sys.argv[3:7])
h = json.load(open(sys.argv[7]))
warnings = sum(1 for _ in open(sys.argv[8]))
print(json.dumps({
    "run": r, "messages": n,
    "portcullis": {"seconds": pc_el, "msgs_per_s": round(n / pc_el, 1),
                   "injection_seconds": pc_inj, "log_warnings": warnings,
                   "data_reply_p50_ms_le": h.get("p50_ms_le"),
                   "data_reply_p99_ms_le": h.get("p99_ms_le"),
                   "data_reply_p999_ms_le": h.get("p999_ms_le"),
                   "data_reply_over_20ms": h["observations"] - h["buckets_ms"].get("20.0", 0),
                   "data_reply_over_100ms": h["observations"] - h["buckets_ms"].get("100.0", 0),
                   "data_reply_mean_ms": h.get("mean_ms"),
                   "data_reply_observations": h.get("observations"),
                   "loadavg_at_start": float(sys.argv[9])},
    "postfix": {"seconds": pf_el, "msgs_per_s": round(n / pf_el, 1),
                "injection_seconds": pf_inj, "loadavg_at_start": float(sys.argv[10])},
    "ratio": round(pf_el / pc_el, 2),
}))
PY
    tail -1 "$OUT/runs.jsonl" >&2
done

python3 - "$OUT/runs.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'run':>3}  {'portcullis msg/s':>16}  {'postfix msg/s':>13}  {'ratio':>5}  "
      f"{'p50 ≤ ms':>8}  {'p99 ≤ ms':>8}  {'p99.9 ≤ ms':>10}  {'>20 ms':>6}  {'>100 ms':>7}  "
      f"{'mean ms':>7}  warnings  load at start (pc/pf)")
for r in runs:
    pc, pf = r["portcullis"], r["postfix"]
    print(f"{r['run']:>3}  {pc['msgs_per_s']:>16}  {pf['msgs_per_s']:>13}  {r['ratio']:>5}  "
          f"{pc['data_reply_p50_ms_le']!s:>8}  {pc['data_reply_p99_ms_le']!s:>8}  "
          f"{pc.get('data_reply_p999_ms_le')!s:>10}  {pc.get('data_reply_over_20ms')!s:>6}  "
          f"{pc.get('data_reply_over_100ms')!s:>7}  "
          f"{pc['data_reply_mean_ms']!s:>7}  {pc['log_warnings']:>8}  "
          f"{pc['loadavg_at_start']}/{pf['loadavg_at_start']}")
ratios = sorted(r["ratio"] for r in runs)
print(f"ratio portcullis/postfix: median {ratios[len(ratios) // 2]}, min {ratios[0]}, max {ratios[-1]}"
      " (target >= 1.5); p99 target < 20 ms")
PY
echo "results in $OUT" >&2
