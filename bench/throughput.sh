#!/usr/bin/env bash
# Throughput: end-to-end messages per second through the gateway with scanning
# on, against Postfix as a plain relay and Postfix with rspamd as its milter,
# under the same load, in the same run.
#
#   bench/throughput.sh                 # 3 runs of 10,000 messages, three sides
#   RUNS=1 MESSAGES=2000 bench/throughput.sh
#   MILTER=0 bench/throughput.sh        # only Portcullis and the plain relay
#   AUTH=1 bench/throughput.sh          # every message's sender authenticated
#   AUTH=1 DNSBL=1 bench/throughput.sh  # and three DNS lists asked per message
#
# Each run starts fresh instances of the gateway and of Postfix, each with its
# own smtp-sink downstream:
#
#   smtp-source -s 20 -m 10000 -l 5120 ─▶ portcullis ─▶ smtp-sink
#   smtp-source -s 20 -m 10000 -l 5120 ─▶ postfix    ─▶ smtp-sink
#   smtp-source -s 20 -m 10000 -l 5120 ─▶ postfix    ─▶ smtp-sink    ("postfix+rspamd")
#                                            └─ milter: rspamd
#
# The gateway's classifier first learns the corpus's train/ set (scripts/corpus.sh,
# see start_gateway in lib.sh), so every message pays for a full scan.
#
# postfix+rspamd: one rspamd for the whole benchmark (scripts/peers/rspamd.sh
# with RSPAMD_MILTER=1: its proxy worker in milter mode, scanning in its own
# process, rspamd's recommended setup; sqlite3 Bayes learned with rspamc on the
# same train/ set before the first run, no autolearn, so it is the same in every
# run), and per run a fresh Postfix relay (scripts/peers/postfix-relay.sh with
# MILTER=) passing every message to it before the 250. rspamd's actions are its
# defaults (greylist 4, add header 6, reject 15; greylisting itself needs redis
# and is off). The run fails unless rspamd's own count of scanned messages
# (rspamc stat) grew by exactly the number sent during that side, so a milter
# that was skipped cannot pass unnoticed; Postfix's milter_default_action is
# tempfail, so such mail would not reach the sink either.
#
# DNS: with the milter side or AUTH=1, one private dnsmasq for the benchmark
# answers every question at once: NXDOMAIN, except the TXT record of bench.test,
# "v=spf1 ip4:127.0.0.1 -all" (TTL 300 s). rspamd always asks it.
#
# AUTH=1: smtp-source connects from 127.0.0.1. By default the gateway's
# configuration trusts 127.0.0.0/8 (the organisation's own mail server: no SPF,
# DKIM, DMARC and no outside-sender checks) and rspamd takes 127.0.0.1 for a
# local address (no SPF, DKIM, DMARC either). With AUTH=1 the gateway has
# trusted_networks = [] and [dns] servers = [that dnsmasq], and rspamd checks
# local senders too (RSPAMD_CHECK_LOCAL=1), so both authenticate every message
# against the same DNS server: SPF passes, no DKIM signature, no DMARC record.
# The plain relay checks nothing either way.
#
# The clock starts when smtp-source starts and stops when the sink has counted
# all messages (smtp-sink -c, one "mesg=" per completed DATA), so queueing and
# delivery are included. The sides take turns going first (run r starts with
# side r of the list, then the next), each after a sync and a pause so it does
# not pay for the other's disk writes. For the gateway, the histogram
# portcullis_smtp_data_reply_seconds (end of DATA to the 250, fsync included) is
# read from /metrics before and after; p50/p99 are bucket upper bounds. The run
# fails if a sink receives more or fewer messages than were sent.
#
# Output: one line per run and a summary, also in bench/results/throughput-<UTC>/
# (summary.txt, runs.jsonl, and per side the smtp-source output; for the gateway
# its configuration, histogram, warnings and one verdict from its trace; for
# rspamd its stat before and after and one scan result from its log).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-5120}
TIMEOUT=${TIMEOUT:-900}          # seconds a side may take before the run fails
SETTLE=${SETTLE:-5}              # seconds of quiet after sync before each side
MILTER=${MILTER:-1}              # 0: without the postfix+rspamd side
AUTH=${AUTH:-0}                  # 1: the gateway and rspamd authenticate loopback
DNSBL=${DNSBL:-0}                # 1 (with AUTH=1): the gateway asks three DNS lists too
FROM=sender@bench.test
TO=rcpt@example.test             # example.test is the gateway's [[domains]] entry
OUT=${OUT:-$BENCH_DIR/results/throughput-$(date -u +%Y%m%dT%H%M%SZ)}

SIDES=(portcullis postfix)
[ "$MILTER" = 1 ] && SIDES+=(postfix-rspamd)

bench_init
mkdir -p "$OUT"
{
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
    echo "kernel: $(uname -r)  postfix: $(postconf -d -h mail_version)"
    echo "binary: $(binary_info)"
    echo "load: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE, $RUNS runs; sides: ${SIDES[*]}"
    if [ "$AUTH" = 1 ]; then
        echo "auth: on: the gateway trusts no network and checks SPF/DKIM/DMARC; rspamd checks local senders"
        if [ "$DNSBL" = 1 ]; then
            echo "dnsbl: on: the gateway asks zen and dnswl (client) and dbl (domains), all NXDOMAIN"
        fi
    else
        echo "auth: off: loopback is trusted (gateway) and local (rspamd): no SPF/DKIM/DMARC"
    fi
} | tee "$OUT/summary.txt" >&2

now() { date +%s.%N; }

# CPU seconds (user + system) used so far by the given processes.
cpu_seconds() {
    python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    total += int(f[11]) + int(f[12])
print(f"{total / tick:.2f}")
PY
}

# --- DNS: one dnsmasq for the benchmark, if anything asks it ----------------------
DNS_PORT="" DNS_PID=""
if [ "$MILTER" = 1 ] || [ "$AUTH" = 1 ]; then
    command -v dnsmasq >/dev/null || die "dnsmasq is missing: apt-get install dnsmasq-base"
    read -r DNS_PORT <<<"$(free_ports 1)"
    dnsmasq -k --conf-file=/dev/null --port="$DNS_PORT" --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --address=/#/ --local-ttl=300 \
        --txt-record=bench.test,"v=spf1 ip4:127.0.0.1 -all" \
        --pid-file="$WORK/dnsmasq.pid" --log-facility="$WORK/dnsmasq.log" >/dev/null 2>&1 &
    DNS_PID=$!
    BENCH_PIDS+=("$DNS_PID")
    wait_port "$DNS_PORT" || die "dnsmasq did not start: $(tail -3 "$WORK/dnsmasq.log")"
fi

# Questions dnsmasq has answered so far ("null" without dnsmasq): SIGUSR1 makes
# it log its counters.
dns_queries() {
    [ -n "$DNS_PID" ] || { echo null; return; }
    local before n
    before=$(grep -c 'queries answered locally' "$WORK/dnsmasq.log" || true)
    kill -USR1 "$DNS_PID"
    for _ in $(seq 1 100); do
        n=$(grep -c 'queries answered locally' "$WORK/dnsmasq.log" || true)
        [ "$n" -gt "$before" ] && break
        sleep 0.02
    done
    grep 'queries answered locally' "$WORK/dnsmasq.log" | tail -1 \
        | sed -E 's/.*queries forwarded ([0-9]+), queries answered locally ([0-9]+).*/\1 \2/' \
        | awk '{print $1 + $2}'
}

# --- rspamd, once: milter on, Bayes learned from the corpus's train/ set ----------
if [ "$MILTER" = 1 ]; then
    "$RSPAMD_PEER" install || die "rspamd is missing: apt-get install rspamd dnsmasq-base"
    CORPUS=$("$REPO_DIR/scripts/corpus.sh") || die "cannot fetch the corpus (scripts/corpus.sh)"
    check_local=0
    [ "$AUTH" = 1 ] && check_local=1
    log "rspamd: starting (milter mode, DNS 127.0.0.1:$DNS_PORT)"
    RSPAMD_MILTER=1 RSPAMD_CHECK_LOCAL=$check_local start_rspamd rspamd "127.0.0.1:$DNS_PORT"
    RSPAMD_MILTER_PORT=$(sed -n 's/^MILTER_PORT=//p' "$WORK/rspamd/ports.env")
    [ -n "$RSPAMD_MILTER_PORT" ] || die "rspamd.sh wrote no MILTER_PORT"
    log "rspamd: rspamc learn on train/ (spam, then ham)"
    run_bg "$WORK/rspamd-learn-spam.txt" "$RSPAMD_PEER" learn "$WORK/rspamd" spam "$CORPUS/train/spam" || true
    run_bg "$WORK/rspamd-learn-ham.txt" "$RSPAMD_PEER" learn "$WORK/rspamd" ham "$CORPUS/train/ham" || true
    "$RSPAMD_PEER" stats "$WORK/rspamd" >"$OUT/rspamd-stat-trained.txt"
    nspam=$(sed -n 's/^Statfile: BAYES_SPAM .* learned: \([0-9]*\).*/\1/p' "$OUT/rspamd-stat-trained.txt")
    nham=$(sed -n 's/^Statfile: BAYES_HAM .* learned: \([0-9]*\).*/\1/p' "$OUT/rspamd-stat-trained.txt")
    if [ "${nspam:-0}" -lt 200 ] || [ "${nham:-0}" -lt 200 ]; then
        die "rspamd's Bayes needs 200 of each (min_learns); see $WORK/rspamd-learn-*.txt"
    fi
    RSPAMD_MAIN=$(tr -dc 0-9 <"$WORK/rspamd/run/rspamd.pid")
    {
        echo "rspamd: $(rspamd --version | sed 's/.*version //') (Debian $(dpkg-query -W -f '${Version}' rspamd 2>/dev/null))," \
             "milter on 127.0.0.1:$RSPAMD_MILTER_PORT (proxy worker, self_scan)," \
             "$(pgrep -P "$RSPAMD_MAIN" -f 'rspamd_proxy process' | wc -l) proxy process(es);" \
             "Bayes learned $nspam spam, $nham ham; check_local=$check_local"
    } | tee -a "$OUT/summary.txt" >&2
fi

# CPU seconds used so far by the rspamd instance (main process and workers).
rspamd_cpu() {
    local pids
    mapfile -t pids < <(pgrep -P "$RSPAMD_MAIN" || true)
    cpu_seconds "$RSPAMD_MAIN" "${pids[@]}"
}

# measure SIDE PORT SINK: sends the load to PORT, waits until SINK has it all.
# Sets ELAPSED (start to last message at the sink), INJECTED (smtp-source's run),
# LOADAVG (at the start) and DNS (questions dnsmasq answered meanwhile).
measure() {
    local side=$1 port=$2 sink=$3 t0 t1 ti n last=0 stalled=0 dns0 dns1
    # Start from a settled disk: the previous side's writeback (and, with the
    # discard mount option, its deleted queue files) must not land on this one.
    sync; sleep "$SETTLE"
    LOADAVG=$(cut -d' ' -f1 /proc/loadavg)     # the machine is shared: note how busy
    dns0=$(dns_queries)
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
    dns1=$(dns_queries)
    ELAPSED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$t0" "$t1")
    INJECTED=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$t0" "$ti")
    if [ "$dns0" = null ]; then DNS=null; else DNS=$((dns1 - dns0)); fi
}

# side_json FILE KEY=JSON...: the side's figures, for the run's line in runs.jsonl
side_json() {
    python3 - "$@" <<'PY'
import json, sys
obj = {}
for a in sys.argv[2:]:
    k, v = a.split("=", 1)
    obj[k] = json.loads(v)
json.dump(obj, open(sys.argv[1], "w"))
PY
}

run_portcullis() {
    local r=$1 smtp http sink extra="" trusted='["127.0.0.0/8"]' cpu0 cpu1
    read -r smtp http sink <<<"$(free_ports 3)"
    start_sink "gw$r-sink" "$sink"
    if [ "$AUTH" = 1 ]; then
        trusted='[]'
        extra=$(printf '\n[dns]\nservers = ["127.0.0.1:%s"]\n' "$DNS_PORT")
        if [ "$DNSBL" = 1 ]; then
            # The lists rspamd asks by default; the benchmark's dnsmasq answers
            # NXDOMAIN, the usual answer for mail that is not listed.
            extra+=$'\n[[scan.dnsbl.lists]]\nzone = "zen.spamhaus.org"\nkind = "ip"\nsymbol = "RCVD_IN_ZEN"\nscore = 6.0'
            extra+=$'\n[[scan.dnsbl.lists]]\nzone = "list.dnswl.org"\nkind = "ip"\nsymbol = "RCVD_IN_DNSWL"\nscore = -1.0'
            extra+=$'\n[[scan.dnsbl.lists]]\nzone = "dbl.spamhaus.org"\nkind = "domain"\nsymbol = "URIBL_DBL"\nscore = 5.0\n'
        fi
    fi
    TRUSTED_NETWORKS=$trusted gateway_config "gw$r" "$smtp" "$http" "$sink" "$extra"
    start_gateway "gw$r" "$http"
    cp "$WORK/gw$r.toml" "$OUT/run$r-portcullis.toml"
    curl -sf "http://127.0.0.1:$http/metrics" >"$OUT/run$r-portcullis.metrics-before.txt"
    cpu0=$(cpu_seconds "$GATEWAY_PID")
    measure "run$r-portcullis" "$smtp" "gw$r-sink"
    cpu1=$(cpu_seconds "$GATEWAY_PID")
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
    # One verdict as the trace recorded it (its symbols for these messages).
    python3 - "$WORK/gw$r/trace.sqlite" >"$OUT/run$r-portcullis.verdict-sample.txt" <<'PY' || true
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("SELECT detail FROM events WHERE kind = 'scanned' ORDER BY seq LIMIT 1").fetchone()
print(row[0] if row else "no scanned event in the trace")
PY
    # The verdicts of this side's messages, from the counter's increase.
    local verdicts
    verdicts=$(python3 - "$OUT/run$r-portcullis.metrics-before.txt" "$OUT/run$r-portcullis.metrics-after.txt" <<'PY'
import json, re, sys
def read(path):
    out = {}
    for line in open(path):
        m = re.match(r'portcullis_scan_verdicts_total\{action="([^"]*)",category="([^"]*)"\} (\S+)', line)
        if m:
            out[f"{m[1]}/{m[2]}"] = float(m[3])
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
print(json.dumps({k: int(v - a.get(k, 0)) for k, v in sorted(b.items()) if v - a.get(k, 0)}))
PY
)
    side_json "$WORK/run$r-portcullis.json" "seconds=$ELAPSED" "injection_seconds=$INJECTED" \
        "loadavg_at_start=$LOADAVG" "dns_queries=$DNS" "verdicts=$verdicts" \
        "cpu_seconds=$(python3 -c "print(round($cpu1 - $cpu0, 2))")"
    if [ "$AUTH" = 1 ] && [ "$DNS" = 0 ]; then
        die "portcullis: no DNS question during the run: the senders were not authenticated"
    fi
}

run_postfix() {
    local r=$1 smtp sink
    read -r smtp sink <<<"$(free_ports 2)"
    start_sink "pf$r-sink" "$sink"
    start_postfix "pf$r" "$smtp" "$sink"
    measure "run$r-postfix" "$smtp" "pf$r-sink"
    "$POSTFIX_RELAY" stop "$WORK/pf$r"
    grep -Ec 'status=(deferred|bounced)' "$WORK/pf$r/maillog" >"$OUT/run$r-postfix.not-sent.txt" || true
    side_json "$WORK/run$r-postfix.json" "seconds=$ELAPSED" "injection_seconds=$INJECTED" \
        "loadavg_at_start=$LOADAVG"
}

# Postfix with rspamd as its milter. rspamd's counters (rspamc stat) before and
# after prove that it scanned every message and say what it decided.
run_postfix_rspamd() {
    local r=$1 smtp sink log_at cpu0 cpu1 side
    side=run$r-postfix-rspamd
    read -r smtp sink <<<"$(free_ports 2)"
    start_sink "pr$r-sink" "$sink"
    start_postfix "pr$r" "$smtp" "$sink" "inet:127.0.0.1:$RSPAMD_MILTER_PORT"
    "$RSPAMD_PEER" stats "$WORK/rspamd" >"$OUT/$side.rspamd-stat-before.txt"
    log_at=$(stat -c %s "$WORK/rspamd/log/rspamd.log")
    cpu0=$(rspamd_cpu)
    measure "$side" "$smtp" "pr$r-sink"
    cpu1=$(rspamd_cpu)
    "$RSPAMD_PEER" stats "$WORK/rspamd" >"$OUT/$side.rspamd-stat-after.txt"
    "$POSTFIX_RELAY" stop "$WORK/pr$r"
    grep -Ec 'status=(deferred|bounced)' "$WORK/pr$r/maillog" >"$OUT/$side.not-sent.txt" || true
    local milter_replies
    milter_replies=$(grep -c 'milter-' "$WORK/pr$r/maillog" || true)
    # One scan result line as rspamd logged it (its symbols for these messages),
    # and what it complained about meanwhile (not the expected map fetches, nor
    # its note on every one of these messages that it has no Content-Type).
    tail -c +$((log_at + 1)) "$WORK/rspamd/log/rspamd.log" | grep -m1 'rspamd_task_write_log' \
        >"$OUT/$side.rspamd-sample.txt" || true
    tail -c +$((log_at + 1)) "$WORK/rspamd/log/rspamd.log" | grep -E 'cannot|error|timeout' \
        | grep -v 'maps.rspamd.com\|cannot find content-type' | head -20 >"$OUT/$side.rspamd-errors.txt" || true
    [ -s "$OUT/$side.rspamd-errors.txt" ] || rm -f "$OUT/$side.rspamd-errors.txt"
    local scan
    scan=$(python3 - "$OUT/$side.rspamd-stat-before.txt" "$OUT/$side.rspamd-stat-after.txt" <<'PY'
import json, re, sys
def read(path):
    out = {"scanned": 0, "actions": {}}
    for line in open(path):
        m = re.match(r"Messages scanned: (\d+)", line)
        if m:
            out["scanned"] = int(m[1])
        m = re.match(r"Messages with action (.+): (\d+),", line)
        if m:
            out["actions"][m[1]] = int(m[2])
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
actions = {k: v - a["actions"].get(k, 0) for k, v in b["actions"].items() if v - a["actions"].get(k, 0)}
print(json.dumps({"scanned": b["scanned"] - a["scanned"], "actions": actions}))
PY
)
    side_json "$WORK/$side.json" "seconds=$ELAPSED" "injection_seconds=$INJECTED" \
        "loadavg_at_start=$LOADAVG" "dns_queries=$DNS" "rspamd=$scan" \
        "rspamd_cpu_seconds=$(python3 -c "print(round($cpu1 - $cpu0, 2))")" \
        "milter_log_lines=${milter_replies:-0}"
    local scanned
    scanned=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["scanned"])' "$scan")
    [ "$scanned" = "$MESSAGES" ] \
        || die "postfix+rspamd: rspamd scanned $scanned messages for $MESSAGES sent (see $OUT/$side.rspamd-stat-*.txt)"
}

for r in $(seq 1 "$RUNS"); do
    order=()
    for i in $(seq 0 $((${#SIDES[@]} - 1))); do
        order+=("${SIDES[$(((r - 1 + i) % ${#SIDES[@]}))]}")
    done
    for side in "${order[@]}"; do
        log "run $r: $side"
        case "$side" in
        portcullis) run_portcullis "$r" ;;
        postfix) run_postfix "$r" ;;
        postfix-rspamd) run_postfix_rspamd "$r" ;;
        esac
    done
    python3 - "$r" "$MESSAGES" "$AUTH" "$WORK" "$OUT" "${order[@]}" >>"$OUT/runs.jsonl" <<'PY'
import json, sys
r, n, auth, work, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
order = sys.argv[6:]
sides = {s: json.load(open(f"{work}/run{r}-{s}.json")) for s in order}
for s in sides.values():
    s["msgs_per_s"] = round(n / s["seconds"], 1)
pc = sides["portcullis"]
h = json.load(open(f"{out}/run{r}-portcullis.histogram.json"))
pc.update({
    "log_warnings": sum(1 for _ in open(f"{out}/run{r}-portcullis.warnings.txt")),
    "data_reply_p50_ms_le": h.get("p50_ms_le"),
    "data_reply_p99_ms_le": h.get("p99_ms_le"),
    "data_reply_p999_ms_le": h.get("p999_ms_le"),
    "data_reply_over_20ms": h["observations"] - h["buckets_ms"].get("20.0", 0),
    "data_reply_over_100ms": h["observations"] - h["buckets_ms"].get("100.0", 0),
    "data_reply_mean_ms": h.get("mean_ms"),
    "data_reply_observations": h.get("observations"),
})
line = {"run": r, "messages": n, "auth": auth, "order": order,
        "portcullis": pc, "postfix": sides["postfix"],
        "ratio": round(sides["postfix"]["seconds"] / pc["seconds"], 2)}
if "postfix-rspamd" in sides:
    line["postfix_rspamd"] = sides["postfix-rspamd"]
    line["ratio_rspamd"] = round(sides["postfix-rspamd"]["seconds"] / pc["seconds"], 2)
print(json.dumps(line))
PY
    tail -1 "$OUT/runs.jsonl" >&2
done

python3 - "$OUT/runs.jsonl" <<'PY' | tee -a "$OUT/summary.txt"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
milter = all("postfix_rspamd" in r for r in runs)
head = f"{'run':>3}  {'portcullis msg/s':>16}  {'postfix msg/s':>13}  "
if milter:
    head += f"{'postfix+rspamd msg/s':>20}  "
head += f"{'ratio':>5}  "
if milter:
    head += f"{'ratio rspamd':>12}  "
head += (f"{'p50 ≤ ms':>8}  {'p99 ≤ ms':>8}  {'p99.9 ≤ ms':>10}  {'>20 ms':>6}  {'>100 ms':>7}  "
         f"{'mean ms':>7}  warnings  load at start")
print(head)
for r in runs:
    pc, pf, pr = r["portcullis"], r["postfix"], r.get("postfix_rspamd")
    row = f"{r['run']:>3}  {pc['msgs_per_s']:>16}  {pf['msgs_per_s']:>13}  "
    if milter:
        row += f"{pr['msgs_per_s']:>20}  "
    row += f"{r['ratio']:>5}  "
    if milter:
        row += f"{r['ratio_rspamd']:>12}  "
    load = "/".join(str(r[k]["loadavg_at_start"]) for k in ("portcullis", "postfix", "postfix_rspamd") if k in r)
    row += (f"{pc['data_reply_p50_ms_le']!s:>8}  {pc['data_reply_p99_ms_le']!s:>8}  "
            f"{pc.get('data_reply_p999_ms_le')!s:>10}  {pc.get('data_reply_over_20ms')!s:>6}  "
            f"{pc.get('data_reply_over_100ms')!s:>7}  "
            f"{pc['data_reply_mean_ms']!s:>7}  {pc['log_warnings']:>8}  {load}")
    print(row)
print("load at start: portcullis/postfix" + ("/postfix+rspamd" if milter else ""))

def spread(name, values, target=""):
    print(f"{name}: median {statistics.median(values):g}, min {min(values):g}, max {max(values):g}{target}")

spread("portcullis msg/s", [r["portcullis"]["msgs_per_s"] for r in runs])
spread("postfix msg/s", [r["postfix"]["msgs_per_s"] for r in runs])
if milter:
    spread("postfix+rspamd msg/s", [r["postfix_rspamd"]["msgs_per_s"] for r in runs])
spread("ratio portcullis/postfix", [r["ratio"] for r in runs], " (target >= 1.0 with scanning on)")
if milter:
    spread("ratio portcullis/(postfix+rspamd)", [r["ratio_rspamd"] for r in runs], " (target >= 3)")
spread("p99 ≤ ms", [r["portcullis"]["data_reply_p99_ms_le"] for r in runs], " (target < 20 ms)")
for r in runs:
    pc = r["portcullis"]
    extra = f"run {r['run']}: portcullis verdicts {pc.get('verdicts')}, DNS questions {pc.get('dns_queries')}, CPU {pc.get('cpu_seconds')} s"
    if milter:
        pr = r["postfix_rspamd"]
        extra += (f"; rspamd scanned {pr['rspamd']['scanned']}, actions {pr['rspamd']['actions']},"
                  f" DNS questions {pr.get('dns_queries')}, rspamd CPU {pr.get('rspamd_cpu_seconds')} s")
    print(extra)
PY
echo "results in $OUT" >&2
