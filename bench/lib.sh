# shellcheck shell=bash
# Shared helpers for the bash benchmarks in bench/. Source it; do not run it.
#
#   bench_init            checks the peers, builds the release binary (see below),
#                         makes a work dir ($WORK) and installs the cleanup trap
#   free_ports N          prints N distinct free TCP ports on 127.0.0.1
#   start_sink NAME PORT  smtp-sink counting messages into $WORK/NAME.count
#   sink_count NAME       messages the sink has received so far
#   gateway_config ...    writes a gateway configuration
#   start_gateway NAME    starts the gateway on $WORK/NAME.toml, waits for /healthz
#   start_postfix ...     a private Postfix relay (scripts/peers/postfix-relay.sh)
#   start_rspamd NAME ... a private rspamd (scripts/peers/rspamd.sh)
#
# Everything started here is recorded and stopped by the EXIT trap, also when a
# benchmark fails or is interrupted.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}
# PORTCULLIS_BIN=path measures that binary as it is. Otherwise the release build
# is brought up to date with the working tree first (a no-op when it is), unless
# NO_BUILD=1 and a binary exists.
BUILD_BIN=1
[ -n "${PORTCULLIS_BIN:-}" ] && BUILD_BIN=0
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$CARGO_TARGET_DIR/release/portcullis}
POSTFIX_RELAY=$REPO_DIR/scripts/peers/postfix-relay.sh
RSPAMD_PEER=$REPO_DIR/scripts/peers/rspamd.sh

BENCH_PIDS=()
BENCH_POSTFIX_DIRS=()
BENCH_RSPAMD_DIRS=()
KEEP_WORK=${KEEP_WORK:-0}

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }

# A child of this shell (so a recorded PID that has since been reused by some
# other process is never signalled), and whether it still runs (an exited child
# not yet reaped is a zombie).
ours() {
    local stat rest fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    read -r -a fields <<<"$rest"      # state, parent's pid, ...
    [ "${fields[1]}" = "$$" ]
}
running() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    [ "${rest%% *}" != Z ]
}

# run_bg OUTFILE CMD...: runs a command in the background with its output in
# OUTFILE, registered for cleanup, and waits for it; unlike a foreground command,
# the wait is cut short by INT/TERM.
run_bg() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    local pid=$!
    BENCH_PIDS+=("$pid")
    wait "$pid"
}

bench_cleanup() {
    local rc=$?
    set +e
    for d in "${BENCH_POSTFIX_DIRS[@]}"; do "$POSTFIX_RELAY" stop "$d"; done
    for d in "${BENCH_RSPAMD_DIRS[@]}"; do "$RSPAMD_PEER" stop "$d"; done
    for p in "${BENCH_PIDS[@]}"; do ours "$p" && kill "$p" 2>/dev/null; done
    for p in "${BENCH_PIDS[@]}"; do
        ours "$p" || continue
        for _ in $(seq 1 50); do running "$p" || break; sleep 0.1; done
        running "$p" && kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        if [ "$KEEP_WORK" = 1 ] || [ "$rc" != 0 ]; then
            echo "bench: work files kept in $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

bench_init() {
    [ "$(id -u)" = 0 ] || die "run as root (Postfix's master and smtp-sink -u root need it)"
    for t in smtp-source smtp-sink postfix python3 curl; do
        command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] \
            || die "$t is missing; install the peers with scripts/install-peers.sh"
    done
    export PATH=$PATH:/usr/sbin
    if [ "$BUILD_BIN" = 1 ] && { [ "${NO_BUILD:-0}" != 1 ] || [ ! -x "$PORTCULLIS_BIN" ]; }; then
        log "building the release binary"
        (cd "$REPO_DIR" && cargo build --release -p portcullis) || die "build failed"
    fi
    [ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN"
    BUILT_BIN=$PORTCULLIS_BIN
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
    chmod 755 "$WORK"      # Postfix's daemons must reach their queue below it
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # Measure a private copy: a rebuild in the shared target directory during
    # the run must not change the binary under the benchmark.
    cp "$PORTCULLIS_BIN" "$WORK/portcullis"
    PORTCULLIS_BIN=$WORK/portcullis
    if [ "$(stat -f -c %T "$WORK")" = tmpfs ]; then
        echo "bench: warning: $WORK is on tmpfs, fsync costs nothing there;" \
             "set TMPDIR to a disk-backed directory for meaningful figures" >&2
    fi
}

free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

wait_port() {
    local port=$1
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# smtp-sink -c prints "sess=N quit=N mesg=N" after every session end, QUIT and
# final "."; mesg counts messages whose data it received completely.
start_sink() {
    local name=$1 port=$2
    smtp-sink -u root -c "127.0.0.1:$port" 1024 >"$WORK/$name.count" 2>"$WORK/$name.err" &
    BENCH_PIDS+=($!)
    wait_port "$port" || die "smtp-sink $name did not listen on $port"
}

sink_count() {
    local n
    n=$(tail -c 200 "$WORK/$1.count" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1)
    n=${n#mesg=}
    echo "${n:-0}"
}

# gateway_config NAME SMTP_PORT HTTP_PORT SINK_PORT [extra TOML appended]
# TRUSTED_NETWORKS (a TOML array, default loopback) is [smtp] trusted_networks.
gateway_config() {
    local name=$1 smtp=$2 http=$3 sink=$4 extra=${5:-}
    local trusted=${TRUSTED_NETWORKS:-'["127.0.0.0/8"]'}
    mkdir -p "$WORK/$name"
    cat >"$WORK/$name.toml" <<TOML
[server]
hostname = "gw.bench.test"
data_dir = "$WORK/$name"

[smtp]
listen = ["127.0.0.1:$smtp"]
trusted_networks = $trusted

[http]
listen = "127.0.0.1:$http"

[[domains]]
name = "example.test"
deliver_to = "smtp://127.0.0.1:$sink"

[queue]
delivery_tls = "disabled"
$extra
TOML
}

# start_gateway NAME HTTP_PORT: runs the gateway on $WORK/NAME.toml, logging to
# $WORK/NAME.log; sets GATEWAY_PID. The content classifier is first taught the
# corpus's training set (scripts/corpus.sh), so that every message pays for a
# full scan as in production; TRAIN=0 skips that.
start_gateway() {
    local name=$1 http=$2 corpus
    if [ "${TRAIN:-1}" = 1 ] && [ ! -e "$WORK/$name.trained" ]; then
        corpus=$("$BENCH_DIR/../scripts/corpus.sh") || die "cannot fetch the corpus (TRAIN=0 skips it)"
        "$PORTCULLIS_BIN" --config "$WORK/$name.toml" train \
            --spam "$corpus/train/spam" --ham "$corpus/train/ham" >>"$WORK/$name.log" 2>&1 \
            || die "portcullis train failed: $(tail -3 "$WORK/$name.log")"
        touch "$WORK/$name.trained"
    fi
    "$PORTCULLIS_BIN" serve --config "$WORK/$name.toml" >>"$WORK/$name.log" 2>&1 &
    GATEWAY_PID=$!
    BENCH_PIDS+=("$GATEWAY_PID")
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && return 0
        kill -0 "$GATEWAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$name.log" >&2
    die "the gateway did not come up"
}

# start_postfix NAME LISTEN_PORT NEXT_HOP_PORT [MILTER]: MILTER as in
# postfix-relay.sh (inet:127.0.0.1:PORT), none if not given.
start_postfix() {
    local dir=$WORK/$1
    BENCH_POSTFIX_DIRS+=("$dir")
    MILTER=${4:-} "$POSTFIX_RELAY" start "$dir" "$2" "$3" || die "postfix did not start"
}

# start_rspamd NAME DNS: a private rspamd in $WORK/NAME on free ports, asking
# the DNS server DNS (127.0.0.1:PORT); its ports are then in $WORK/NAME/ports.env.
# RSPAMD_* variables (RSPAMD_MILTER=1, ...) pass through to scripts/peers/rspamd.sh.
start_rspamd() {
    local dir=$WORK/$1 normal controller
    read -r normal controller <<<"$(free_ports 2)"
    BENCH_RSPAMD_DIRS+=("$dir")
    "$RSPAMD_PEER" start "$dir" "$normal" "$controller" "$2" >"$WORK/$1.start.txt" 2>&1 \
        || die "rspamd did not start: $(tail -5 "$WORK/$1.start.txt")"
}

# What was measured: the binary's version, checksum and build time, and the commit.
binary_info() {
    echo "$("$PORTCULLIS_BIN" --version), sha256 $(sha256sum "$PORTCULLIS_BIN" | cut -c1-12)," \
         "built $(date -u -r "$BUILT_BIN" +%FT%TZ), repository at" \
         "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo -)" \
         "$(git -C "$REPO_DIR" diff --quiet HEAD -- crates 2>/dev/null || echo '(crates/ modified)')"
}

queue_messages() {
    curl -sf "http://127.0.0.1:$1/healthz" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["messages"])'
}
