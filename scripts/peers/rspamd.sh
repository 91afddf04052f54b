#!/usr/bin/env bash
# A private rspamd instance for side-by-side comparisons (bench/quality.sh, and
# bench/throughput.sh as Postfix's milter).
#
#   rspamd.sh start DIR [NORMAL_PORT CONTROLLER_PORT [DNS]]
#   RSPAMD_MILTER=1 rspamd.sh start DIR ...   # also the milter (proxy worker)
#   rspamd.sh learn DIR spam|ham PATH...   # rspamc learn_spam/learn_ham, 2 at a time
#   rspamd.sh stats DIR                    # rspamc stat (Bayes learns among it)
#   rspamd.sh stop DIR
#   rspamd.sh install                      # only install what is missing
#
# Everything lives under DIR: configuration (DIR/etc: an rspamd.conf of our own
# that takes Debian's /etc/rspamd for everything else, plus local.d/override.d),
# Bayes statistics (DIR/db, sqlite3 backend: no redis), run files and logs. The
# system's rspamd (ports 11332-11334, /var/lib/rspamd) is not touched; only the
# normal worker (scanning, /checkv2), the controller (learning, /stat) and, if
# asked for, the milter run, on loopback. Ports not given are picked free. They are written to DIR/ports.env
# (NORMAL_PORT=, CONTROLLER_PORT=, DNS=) and printed. Normal workers: rspamd's
# default, max(1, cores - 2); RSPAMD_WORKERS=N sets another number.
#
# Milter: with RSPAMD_MILTER=1 the proxy worker runs too, in milter mode, on
# 127.0.0.1:MILTER_PORT (RSPAMD_MILTER_PORT, or picked free; written to
# DIR/ports.env as MILTER_PORT=). It is rspamd's recommended milter setup: Debian's
# worker-proxy.inc (milter = yes, timeout = 120s, count = 1, X-Spam header on
# "add header", 5xx on "reject") with local.d/worker-proxy.inc setting
# upstream "local" { default = yes; self_scan = yes; }, so the proxy scans each
# message in its own process instead of passing it on to the normal worker over
# HTTP (see the comment where it is written). RSPAMD_PROXY_WORKERS=N runs N proxy
# processes instead of Debian's one. For Postfix: scripts/peers/postfix-relay.sh
# with MILTER=inet:127.0.0.1:MILTER_PORT.
#
# RSPAMD_CHECK_LOCAL=1: SPF, DKIM and DMARC are checked also for mail from
# local addresses (127.0.0.1 included; rspamd skips them by default, as it does
# for authenticated senders), so a benchmark sending from loopback can measure a
# server that authenticates every sender.
#
# DNS: rspamd's network rules (RBLs, SURBL, SPF, DKIM, DMARC, ASN) ask its own
# resolver, and with no internet they would wait for time-outs. DNS is
# "127.0.0.1:PORT" of a server that answers at once; without it a private dnsmasq
# is started that answers NXDOMAIN to every question (nothing is listed, no
# record exists), the same as an offline site with a local resolver.
#
# Bayes: trained only by `learn` (rspamc learn_spam / learn_ham through the
# controller); autolearn is off; min_learns is rspamd's default, 200 of each.
# rspamd's own learn condition stays: once both classes have 200, a message it
# already puts in that class with > 95 % is not learned again
# (RSPAMD_LEARN_ALL=1 learns everything). DKIM signing is off (see below).
# The Hyperscan cache goes to $RSPAMD_HS_CACHE (default
# /var/cache/portcullis-peers/rspamd-hs, where _rspamd can reach it) so later
# runs need not compile it again.
#
# Needs root (the workers run as _rspamd) and Debian's rspamd (installed with
# apt-get if missing) and dnsmasq-base.
set -euo pipefail
cmd=${1:-} dir=$(realpath -m "${2:-.}")
export PATH=$PATH:/usr/sbin

die() { echo "rspamd.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A pid from a pid file, if that process still runs and is ours: DIR is in its
# command line or it has a file under DIR open (rspamd rewrites its command line
# to "rspamd: main process" but keeps its log open), so a reused pid is never
# signalled.
our_pid() {
    local f=$1 pid
    [ -f "$f" ] || return 1
    pid=$(tr -dc 0-9 <"$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    if ! grep -qF "$dir/" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")"; then
        # (read whole, then searched: grep -q in a pipe would cut find short
        # and pipefail would count that as a failure)
        local open
        open=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null || true)
        grep -qF "$dir/" <<<"$open" || return 1
    fi
    echo "$pid"
}

stop_pid() {
    local pid
    pid=$(our_pid "$1") || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

install_if_missing() {
    local need=()
    command -v rspamd >/dev/null || need+=(rspamd)
    command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
    command -v curl >/dev/null || need+=(curl)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "${need[*]} missing: apt-get install ${need[*]} (as root)"
    echo "rspamd.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } \
        || die "apt-get install ${need[*]} failed"
    # The package may have started the system instance; ours does not need it.
}

case "$cmd" in
install)
    install_if_missing
    exit 0
    ;;
stats)
    # shellcheck source=/dev/null
    . "$dir/ports.env"
    exec rspamc -h "127.0.0.1:$CONTROLLER_PORT" stat
    ;;
stop)
    stop_pid "$dir/run/rspamd.pid"
    stop_pid "$dir/run/dnsmasq.pid"
    exit 0
    ;;
learn)
    [ -f "$dir/ports.env" ] || die "no instance in $dir"
    # shellcheck source=/dev/null
    . "$dir/ports.env"
    class=$3
    shift 3
    case "$class" in spam|ham) ;; *) die "learn: spam or ham, not $class" ;; esac
    # -n 2: two messages at a time. The controller answers "success = true" or
    # why a message was not learned (already learned, or already in that class
    # with probability > 95 %: rspamd's own learn condition).
    # RSPAMD_LEARN_ALL=1 sends "Learn-Type: bulk", which lifts that condition
    # (every message is learned, whatever the order).
    extra=()
    [ "${RSPAMD_LEARN_ALL:-0}" = 1 ] && extra=(--header "Learn-Type: bulk")
    exec rspamc -h "127.0.0.1:$CONTROLLER_PORT" -t 60 -n 2 "${extra[@]}" "learn_$class" "$@"
    ;;
start) ;;
*) echo "usage: $0 start|learn|stats|stop DIR ... | install" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (the workers switch to _rspamd)"
install_if_missing
normal=${3:-$(free_port)}
controller=${4:-$(free_port)}
dns=${5:-}
hs_cache=${RSPAMD_HS_CACHE:-/var/cache/portcullis-peers/rspamd-hs}

our_pid "$dir/run/rspamd.pid" >/dev/null && die "an instance already runs in $dir"
mkdir -p "$dir"/{etc/local.d,etc/override.d,db,run,log} "$hs_cache"
chmod 755 "$dir"

if [ -z "$dns" ]; then
    dns_port=$(free_udp_port)
    dnsmasq --conf-file=/dev/null --port="$dns_port" --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --address=/#/ \
        --pid-file="$dir/run/dnsmasq.pid" --log-facility="$dir/log/dnsmasq.log" \
        || die "dnsmasq did not start"
    dns=127.0.0.1:$dns_port
fi

# rspamd's default number of normal workers is max(1, cores - 2): one on a
# 2-core machine. RSPAMD_WORKERS=N sets it.
workers=""
[ -n "${RSPAMD_WORKERS:-}" ] && workers="count = $RSPAMD_WORKERS;"

# The milter: the proxy worker, as in Debian's rspamd.conf (its worker-proxy.inc
# merged with local.d/worker-proxy.inc), on our port.
milter_port="" proxy_worker=""
if [ "${RSPAMD_MILTER:-0}" = 1 ]; then
    milter_port=${RSPAMD_MILTER_PORT:-$(free_port)}
    proxy_worker="worker \"rspamd_proxy\" {
    bind_socket = \"127.0.0.1:$milter_port\";
    .include \"\$CONFDIR/worker-proxy.inc\"
    .include(try=true; priority=1,duplicate=merge) \"\$LOCAL_CONFDIR/local.d/worker-proxy.inc\"
}"
    # self_scan: the proxy scans the message itself. This is what rspamd's
    # documentation recommends for a milter (quick start, MTA integration); the
    # alternative, forwarding each message over HTTP to the normal worker, adds
    # a hop and a second process per message and is meant for a proxy in front
    # of a farm of scanners. Either way one process scans on this machine: Debian
    # runs one proxy worker, and the default of normal workers is
    # max(1, cores - 2), one on 2 cores.
    cat >"$dir/etc/local.d/worker-proxy.inc" <<CONF
milter = yes;
timeout = 120s;
upstream "local" {
    default = yes;
    self_scan = yes;
}
CONF
    # (Here, not in the worker block: a second count there would not replace
    # the one of worker-proxy.inc.)
    if [ -n "${RSPAMD_PROXY_WORKERS:-}" ]; then
        echo "count = $RSPAMD_PROXY_WORKERS;" >>"$dir/etc/local.d/worker-proxy.inc"
    fi
fi

# Our top-level file: Debian's common configuration (metrics, modules, rules)
# with only the workers we use, on our ports.
cat >"$dir/etc/rspamd.conf" <<CONF
.include "\$CONFDIR/common.conf"
options {
    pidfile = "\$RUNDIR/rspamd.pid";
    .include "\$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "\$LOGDIR/rspamd.log";
    .include "\$CONFDIR/logging.inc"
    .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/logging.inc"
}
worker "normal" {
    bind_socket = "127.0.0.1:$normal";
    .include "\$CONFDIR/worker-normal.inc"
    $workers
}
worker "controller" {
    bind_socket = "127.0.0.1:$controller";
    .include "\$CONFDIR/worker-controller.inc"
}
$proxy_worker
CONF

cat >"$dir/etc/local.d/options.inc" <<CONF
dns {
    nameserver = ["$dns"];
    timeout = 1s;
    retransmits = 1;
}
hs_cache_dir = "$hs_cache";
CONF

# The benchmark judges inbound mail. Every message reaches the worker from
# 127.0.0.1 (no IP is given, as for the other scanners), which rspamd takes for
# local mail and tries to DKIM-sign (sign_local) with keys that do not exist
# here: work that is not filtering, and an error line per message. Signing off.
echo 'enabled = false;' >"$dir/etc/local.d/dkim_signing.conf"

# RSPAMD_CHECK_LOCAL=1: authenticate mail from local addresses too (see above).
if [ "${RSPAMD_CHECK_LOCAL:-0}" = 1 ]; then
    for m in spf dkim dmarc; do
        echo 'check_local = true;' >"$dir/etc/local.d/$m.conf"
    done
fi

# Bayes on sqlite3 files in DIR/db (no redis), no autolearn: learned only by
# rspamc. override.d replaces the whole classifier section of statistic.conf.
cat >"$dir/etc/override.d/statistic.conf" <<CONF
classifier "bayes" {
    tokenizer {
        name = "osb";
    }
    backend = "sqlite3";
    min_tokens = 11;
    min_learns = 200;
    cache {
        type = "sqlite3";
        path = "\$DBDIR/learn_cache.sqlite";
    }
    statfile {
        symbol = "BAYES_HAM";
        spam = false;
        path = "\$DBDIR/bayes.ham.sqlite";
    }
    statfile {
        symbol = "BAYES_SPAM";
        spam = true;
        path = "\$DBDIR/bayes.spam.sqlite";
    }
    learn_condition = 'return require("lua_bayes_learn").can_learn';
}
CONF

# The normal and controller workers open the statistics files at the same time
# when they start; if the files do not exist yet, both create them and one of
# them fails ("no such table: tokens") and runs without that statfile. Create
# them first, with the schema of rspamd's sqlite3 backend (src/libstat/backends/
# sqlite3_backend.c, unchanged since 1.x).
python3 - "$dir/db/bayes.ham.sqlite" "$dir/db/bayes.spam.sqlite" <<'PY'
import sqlite3, sys
SCHEMA = """
CREATE TABLE tokenizer(data BLOB);
CREATE TABLE users(id INTEGER PRIMARY KEY,name TEXT,learns INTEGER);
CREATE TABLE languages(id INTEGER PRIMARY KEY,name TEXT,learns INTEGER);
CREATE TABLE tokens(token INTEGER NOT NULL,
  user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  language INTEGER NOT NULL REFERENCES languages(id) ON DELETE CASCADE,
  value INTEGER, modified INTEGER,
  CONSTRAINT tid UNIQUE (token, user, language) ON CONFLICT REPLACE);
CREATE UNIQUE INDEX IF NOT EXISTS un ON users(name);
CREATE INDEX IF NOT EXISTS tok ON tokens(token);
CREATE UNIQUE INDEX IF NOT EXISTS ln ON languages(name);
PRAGMA user_version=1;
INSERT INTO users(id, name, learns) VALUES(0, 'default',0);
INSERT INTO languages(id, name, learns) VALUES(0, 'default',0);
"""
for path in sys.argv[1:]:
    db = sqlite3.connect(path)
    if not db.execute("SELECT name FROM sqlite_master WHERE name='tokens'").fetchone():
        db.executescript(SCHEMA)
    db.commit()
    db.close()
PY
chown -R _rspamd:_rspamd "$dir/db" "$dir/run" "$dir/log" "$hs_cache"
rspamd -c "$dir/etc/rspamd.conf" -u _rspamd -g _rspamd \
    --var="LOCAL_CONFDIR=$dir/etc" --var="DBDIR=$dir/db" \
    --var="RUNDIR=$dir/run" --var="LOGDIR=$dir/log" \
    >"$dir/log/start.log" 2>&1 || { cat "$dir/log/start.log" >&2; die "rspamd did not start"; }

printf 'NORMAL_PORT=%s\nCONTROLLER_PORT=%s\nDNS=%s\n' "$normal" "$controller" "$dns" >"$dir/ports.env"
if [ -n "$milter_port" ]; then echo "MILTER_PORT=$milter_port" >>"$dir/ports.env"; fi

# Ready when the controller answers /stat, the normal worker /ping and the
# milter, if any, accepts connections...
up=0
for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$controller/stat" >/dev/null 2>&1 \
        && curl -sf "http://127.0.0.1:$normal/ping" >/dev/null 2>&1 \
        && { [ -z "$milter_port" ] || (exec 3<>"/dev/tcp/127.0.0.1/$milter_port") 2>/dev/null; }; then
        up=1
        break
    fi
    sleep 0.1
done
if [ "$up" = 0 ]; then
    tail -20 "$dir/log/rspamd.log" >&2 || true
    die "rspamd did not answer on $normal/$controller${milter_port:+/$milter_port}; see $dir/log/rspamd.log"
fi
# ...and the workers have their Hyperscan databases: until then they match with
# PCRE, slower, which would be measured. The hs_helper logs "compiled N regular
# expressions to the hyperscan tree" (N = 0 when the cache had them all) and
# tells the workers a second later. About 10 s when the cache is empty.
for _ in $(seq 1 "${RSPAMD_HS_WAIT:-120}"); do
    if grep -q 'regular expressions to the hyperscan tree' "$dir/log/rspamd.log"; then
        sleep 2
        cat "$dir/ports.env"
        exit 0
    fi
    sleep 1
done
echo "rspamd.sh: warning: no Hyperscan compilation seen in $dir/log/rspamd.log; going on" >&2
cat "$dir/ports.env"
