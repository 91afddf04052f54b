#!/usr/bin/env bash
# A private SpamAssassin (spamd) instance for side-by-side comparisons
# (bench/quality.sh).
#
#   spamassassin.sh start DIR [PORT [CHILDREN]]    # CHILDREN default 2
#   spamassassin.sh learn DIR spam|ham PATH...     # sa-learn into DIR's Bayes DB
#   spamassassin.sh stats DIR                      # sa-learn --dump magic
#   spamassassin.sh stop DIR
#   spamassassin.sh install                        # only install what is missing
#
# Everything lives under DIR: site configuration (DIR/etc: Debian's .pre files
# and 65_debian.cf, and our local.cf), the Bayes database (DIR/bayes), pid file
# and log. The rules are the ones the Debian package ships in
# /usr/share/spamassassin (not sa-update's, so every machine runs the same
# rules). The system's spamd (port 783), its /etc/spamassassin/local.cf and
# /var/lib/spamassassin are not touched.
#
# Local tests only: spamd -L (no DNS blocklists, no Razor, Pyzor or DCC), and the
# same switches in local.cf. Bayes is on and learned only through `learn`
# (sa-learn); auto-learn is off. required_score is SpamAssassin's default, 5.0.
# `learn` may run before `start` (spamd reads the database on each message).
# The port, if not given, is picked free; it is written to DIR/port and printed.
#
# Needs root (spamd switches to debian-spamd) and Debian's spamassassin, spamd
# and spamc (installed with apt-get if missing; spamd has been a package of its
# own since Debian 12). The packages' own spamd service is not started here.
set -euo pipefail
cmd=${1:-} dir=$(realpath -m "${2:-.}")
export PATH=$PATH:/usr/sbin

die() { echo "spamassassin.sh: $*" >&2; exit 1; }

RULES=/usr/share/spamassassin

# A pid from the pid file, if that process still runs and is ours: DIR is in
# its command line or it has a file under DIR open (spamd rewrites its command
# line to "spamd" but keeps its log open), so a reused pid is never signalled.
our_pid() {
    local pid
    [ -f "$dir/run/spamd.pid" ] || return 1
    pid=$(tr -dc 0-9 <"$dir/run/spamd.pid")
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

install_if_missing() {
    local need=()
    command -v sa-learn >/dev/null || need+=(spamassassin)
    command -v spamd >/dev/null || need+=(spamd)      # its own package since Debian 12
    command -v spamc >/dev/null || need+=(spamc)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "${need[*]} missing: apt-get install ${need[*]} (as root)"
    echo "spamassassin.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } \
        || die "apt-get install ${need[*]} failed"
}

# The site configuration, shared by spamd and sa-learn.
configure() {
    [ -f "$dir/etc/local.cf" ] && return 0
    mkdir -p "$dir/etc" "$dir/bayes" "$dir/run" "$dir/log" "$dir/home"
    chmod 755 "$dir"
    # The plugin list (init.pre, v*.pre) and Debian's own rules, as installed.
    cp /etc/spamassassin/*.pre "$dir/etc/"
    [ -f /etc/spamassassin/65_debian.cf ] && cp /etc/spamassassin/65_debian.cf "$dir/etc/"
    cat >"$dir/etc/local.cf" <<CF
# Private instance for bench/quality.sh: local tests and Bayes only.
required_score      5.0
use_bayes           1
bayes_auto_learn    0
bayes_path          $dir/bayes/bayes
bayes_file_mode     0770
lock_method         flock
skip_rbl_checks     1
use_razor2          0
use_pyzor           0
# DCC's plugin is not loaded by Debian's v310.pre, so it needs no switch.
report_safe         0
CF
}

case "$cmd" in
install)
    install_if_missing
    exit 0
    ;;
stats)
    exec sa-learn -L --configpath="$RULES" --siteconfigpath="$dir/etc" --dump magic
    ;;
stop)
    if pid=$(our_pid); then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || exit 0
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    exit 0
    ;;
learn)
    install_if_missing
    configure
    class=$3
    shift 3
    case "$class" in spam|ham) ;; *) die "learn: spam or ham, not $class" ;; esac
    # --no-sync appends to the journal; the final --sync folds it in once.
    sa-learn -L --configpath="$RULES" --siteconfigpath="$dir/etc" --no-sync "--$class" "$@"
    sa-learn -L --configpath="$RULES" --siteconfigpath="$dir/etc" --sync
    [ "$(id -u)" = 0 ] && chown -R debian-spamd:debian-spamd "$dir/bayes"
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start|learn|stats|stop DIR ... | install" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (spamd switches to debian-spamd)"
install_if_missing
port=${3:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
children=${4:-2}
our_pid >/dev/null && die "an instance already runs in $dir"
configure
chown -R debian-spamd:debian-spamd "$dir/bayes" "$dir/home"

# -L local tests only; -x no per-user configuration; exactly CHILDREN children.
spamd -d -L -x -u debian-spamd -g debian-spamd \
    --configpath="$RULES" --siteconfigpath="$dir/etc" \
    --helper-home-dir="$dir/home" \
    -i 127.0.0.1 -A 127.0.0.1 -p "$port" \
    --max-children="$children" --min-children="$children" \
    --min-spare=1 --max-spare="$children" \
    -r "$dir/run/spamd.pid" -s "$dir/log/spamd.log" \
    || die "spamd did not start; see $dir/log/spamd.log"
echo "$port" >"$dir/port"

# Ready when a child answers PING (spamc -K).
for _ in $(seq 1 600); do
    if spamc -d 127.0.0.1 -p "$port" -K >/dev/null 2>&1; then
        echo "PORT=$port"
        exit 0
    fi
    sleep 0.1
done
tail -20 "$dir/log/spamd.log" >&2 || true
die "spamd did not answer on port $port; see $dir/log/spamd.log"
