#!/usr/bin/env bash
# Where the end-of-DATA latency goes: the gateway under the throughput load
# (smtp-source -s 20 -m 10000 -l 5120) with its fsyncs traced, to split
# portcullis_smtp_data_reply_seconds into storage (the spool's fsync of the
# message file and of the queue folder) and the rest (writing, scheduling on a
# busy machine), and to see whether the trace store's SQLite fsyncs (WAL
# checkpoints) slow the spool's down: they share the filesystem journal.
#
#   bench/latency-breakdown.sh
#   SESSIONS=1 MESSAGES=5000 bench/latency-breakdown.sh
#
# Alongside, every 0.1 s: the size of trace.sqlite-wal and how many replies so
# far took over 100 ms, so a stall can be placed in time and next to the WAL.
#
# Needs strace. strace --seccomp-bpf stops the gateway only at the traced
# syscalls, but that still slows it (about half the throughput): read the
# split and the timing, not the absolute figures. Output:
# bench/results/latency-breakdown-<UTC>/ (summary.txt, strace.txt.gz, timeline.txt).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SESSIONS=${SESSIONS:-20}
MESSAGES=${MESSAGES:-10000}
OUT=${OUT:-$BENCH_DIR/results/latency-breakdown-$(date -u +%Y%m%dT%H%M%SZ)}
command -v strace >/dev/null || die "strace is missing (apt-get install strace)"

bench_init
mkdir -p "$OUT"
echo "binary: $(binary_info)" >"$OUT/binary.txt"
read -r smtp http sink <<<"$(free_ports 3)"
start_sink sink "$sink"
sink_pid=${BENCH_PIDS[-1]}
gateway_config gw "$smtp" "$http" "$sink"
start_gateway gw "$http"
sync; sleep 3

strace -f --seccomp-bpf -e trace=fsync,fdatasync -y -T -ttt -o "$WORK/strace.txt" \
    -p "$GATEWAY_PID" 2>/dev/null &
strace_pid=$!
BENCH_PIDS+=("$strace_pid")
# Timeline: epoch, WAL bytes, replies so far, replies so far within 100 ms.
(
    while :; do
        wal=$(stat -c %s "$WORK/gw/trace.sqlite-wal" 2>/dev/null || echo 0)
        m=$(curl -s "http://127.0.0.1:$http/metrics" || true)
        count=$(grep '^portcullis_smtp_data_reply_seconds_count' <<<"$m" | awk '{print $2}' || true)
        fast=$(grep '^portcullis_smtp_data_reply_seconds_bucket{le="0.1"}' <<<"$m" | awk '{print $2}' || true)
        echo "$(date +%s.%N) $wal ${count:-0} ${fast:-0}"
        sleep 0.1
    done
) >"$OUT/timeline.txt" 2>/dev/null &
BENCH_PIDS+=($!)
sampler_pid=$!
sleep 1

cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }   # busy, idle+iowait
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
curl -sf "http://127.0.0.1:$http/metrics" >"$OUT/metrics-before.txt"
read -r busy0 idle0 <<<"$(cpu)"; g0=$(ticks "$GATEWAY_PID"); s0=$(ticks "$sink_pid"); t0=$(date +%s.%N)
run_bg "$OUT/smtp-source.txt" \
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l 5120 -f sender@bench.test -t rcpt@example.test \
    "127.0.0.1:$smtp"
read -r busy1 idle1 <<<"$(cpu)"; g1=$(ticks "$GATEWAY_PID"); s1=$(ticks "$sink_pid"); t1=$(date +%s.%N)
sleep 2
curl -sf "http://127.0.0.1:$http/metrics" >"$OUT/metrics-after.txt"
kill "$sampler_pid" "$strace_pid"; wait "$strace_pid" 2>/dev/null || true
cp "$WORK/strace.txt" "$OUT/strace.txt"

python3 - "$OUT" "$SESSIONS" "$MESSAGES" "$busy0" "$idle0" "$busy1" "$idle1" "$g0" "$g1" "$s0" "$s1" \
    "$t0" "$t1" "$(getconf CLK_TCK)" "$BENCH_DIR/histogram.py" <<'PY' | tee "$OUT/summary.txt"
import bisect, json, re, subprocess, sys
out, sessions, messages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b0, i0, b1, i1, g0, g1, s0, s1, t0, t1, hz = map(float, sys.argv[4:15])
hist = json.loads(subprocess.check_output(
    [sys.executable, sys.argv[15], out + "/metrics-before.txt", out + "/metrics-after.txt"]))

def kind(path):
    if path.endswith(".msg"):
        return "spool message file"
    if path.endswith("/queue"):
        return "spool queue folder"
    if "sqlite" in path:
        return "trace store (SQLite)"
    return path

calls, pending = [], {}      # (thread, kind, start, end, path)
for line in open(out + "/strace.txt"):
    m = re.match(r"(\d+)\s+([\d.]+) f(?:data)?sync\(\d+<([^>]*)>(.*)$", line)
    if m:
        tid, at, path, rest = m.groups()
        d = re.search(r"<([\d.]+)>$", rest.strip())
        if "<unfinished" in rest:
            pending[tid] = (path, float(at))
        elif d:
            calls.append((tid, kind(path), float(at), float(at) + float(d.group(1)), path))
        continue
    m = re.match(r"(\d+)\s+[\d.]+ <\.\.\. f(?:data)?sync resumed>.*<([\d.]+)>$", line.strip())
    if m and m.group(1) in pending:
        path, start = pending.pop(m.group(1))
        calls.append((m.group(1), kind(path), start, start + float(m.group(2)), path))
calls.sort(key=lambda c: c[2])

def q(values, p):
    v = sorted(values)
    return round(v[min(len(v) - 1, int(p * len(v)))] * 1000, 2) if v else None

def line(label, v, over=0.02):
    return (f"{label:<44} n {len(v):>5}  p50 {q(v, .5)!s:>6}  p90 {q(v, .9)!s:>6}  "
            f"p99 {q(v, .99)!s:>6}  max {q(v, 1)!s:>7} ms  >20 ms: {sum(x > over for x in v)}")

print(f"load: smtp-source -s {sessions} -m {messages} -l 5120 (traced); {(t1 - t0):.2f} s, "
      f"{messages / (t1 - t0):.0f} msg/s accepted")
print(f"CPU while sending: machine {100 * (b1 - b0) / ((b1 - b0) + (i1 - i0)):.0f}% busy; "
      f"gateway {100 * (g1 - g0) / hz / (t1 - t0):.0f}% of one core, "
      f"smtp-sink {100 * (s1 - s0) / hz / (t1 - t0):.0f}%")
b = hist["buckets_ms"]
n = hist["observations"]
print(f"end of DATA -> reply (histogram, {n} obs): p50 <= {hist.get('p50_ms_le')} ms, "
      f"p99 <= {hist.get('p99_ms_le')} ms, p99.9 <= {hist.get('p999_ms_le')} ms; "
      f"over 20 ms: {n - b['20.0']}, over 100 ms: {n - b['100.0']}, over 250 ms: {n - b['250.0']}")
for k in ("spool message file", "spool queue folder", "trace store (SQLite)"):
    print(line(f"fsync {k}", [c[3] - c[2] for c in calls if c[1] == k]))
# Storage per message: from the start of its file's fsync to the end of the first
# folder fsync that started after that (whichever thread ran it: with a group
# commit one folder fsync serves several messages).
folder = [c for c in calls if c[1] == "spool queue folder"]
folder_starts = [c[2] for c in folder]
storage = []
for c in calls:
    if c[1] == "spool message file":
        i = bisect.bisect_left(folder_starts, c[3])
        if i < len(folder):
            storage.append((c[2], folder[i][3]))
sqlite = [(c[2], c[3]) for c in calls if c[1] == "trace store (SQLite)"]
overlaps = lambda a, z: any(s < z and e > a for s, e in sqlite)  # noqa: E731
print(line("spool fsyncs per message (file + folder)", [z - a for a, z in storage]))
print(line("  ...while a trace-store fsync runs", [z - a for a, z in storage if overlaps(a, z)]))
print(line("  ...otherwise", [z - a for a, z in storage if not overlaps(a, z)]))

# The trace store's fsyncs in time, against the WAL size and slow replies.
timeline = []
for l in open(out + "/timeline.txt"):
    f = l.split()
    if len(f) == 4:
        timeline.append((float(f[0]), int(f[1]), float(f[2]), float(f[3])))
def wal_at(t):
    before = [x for x in timeline if x[0] <= t]
    return before[-1][1] if before else 0
during = [c for c in calls if c[1] == "trace store (SQLite)" and t0 <= c[2] <= t1]
print(f"trace-store fsyncs while sending: {len(during)}"
      + (f"; the first at +{during[0][2] - t0:.2f} s, {1000 * (during[0][3] - during[0][2]):.0f} ms long,"
         f" WAL then {wal_at(during[0][2]) / 2**20:.0f} MiB" if during else ""))
if during:
    rest = [c for c in during if c[2] > during[0][3]]
    if rest:
        span = rest[-1][2] - rest[0][2]
        print(f"  after it: {len(rest)} more in {span:.2f} s"
              f" ({len(rest) / max(span, 0.001):.0f}/s)")
print(f"WAL size: largest {max((x[1] for x in timeline), default=0) / 2**20:.0f} MiB")
prev = None
for t, wal, count, fast in timeline:
    slow = count - fast
    if prev is not None and slow > prev:
        print(f"  +{t - t0:6.2f} s: {slow - prev:.0f} more replies over 100 ms "
              f"(after {count:.0f} replies), WAL {wal / 2**20:.0f} MiB")
    prev = slow
PY
gzip -9f "$OUT/strace.txt"     # kept for reading with zless; the analysis is above
