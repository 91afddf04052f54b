#!/usr/bin/env bash
# The click-time redirector under load: GET /l/<token> on the gateway's HTTP
# listener (verify the token, judge the URL with the block/allow lists and the
# link checks, record the click in the trace, answer 302), against nginx
# answering the same path with a fixed `return 302` in the same run, each
# measured by wrk on loopback.
#
#   bench/redirector.sh
#   RATE=5000 CONNECTIONS=50 SECONDS_EACH=15 bench/redirector.sh
#
# Two passes per side: paced at RATE requests/s (each of CONNECTIONS
# connections waits CONNECTIONS/RATE s between requests, through wrk's Lua
# delay(); wrk then reports the latency at that rate, the issue's figure) and
# unpaced (the most it does). The gateway is the release binary with
# `[links] host` set and the default scan lists; nginx runs as a private
# instance with worker_processes auto and no access log. A pass fails if any
# answer is not a 3xx.
#
# Needs root, wrk and nginx (apt-get install wrk nginx-light), curl, python3.
# Output: bench/results/redirector-<UTC>/ (summary.txt and wrk's outputs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RATE=${RATE:-5000}
CONNECTIONS=${CONNECTIONS:-50}
SECONDS_EACH=${SECONDS_EACH:-15}
TARGET="https://www.example.org/landing/page?id=42"
OUT=${OUT:-$BENCH_DIR/results/redirector-$(date -u +%Y%m%dT%H%M%SZ)}

for t in wrk nginx; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || die "$t is missing: apt-get install wrk nginx-light"
done
bench_init
mkdir -p "$OUT"

read -r smtp http sink ngx <<<"$(free_ports 4)"
gateway_config gw "$smtp" "$http" "$sink" "
[links]
host = \"links.bench.test\""
TRAIN=0 start_gateway gw "$http"
link=$("$PORTCULLIS_BIN" --config "$WORK/gw.toml" links sign "$TARGET" \
    --message BENCHMESSAGE0000 --recipient user@example.test)
path=/l/${link##*/l/}

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$ngx;
        location /l/ { return 302 $TARGET; }
    }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' &
BENCH_PIDS+=("$!")
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$ngx$path" && break; sleep 0.1; done

# The answers must be the redirect, on both sides, before anything is timed.
for url in "http://127.0.0.1:$http$path" "http://127.0.0.1:$ngx$path"; do
    got=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$url")
    [ "$got" = "302 $TARGET" ] || die "$url answered '$got', not a 302 to $TARGET"
done

delay_ms=$(python3 -c "print(max(1, round($CONNECTIONS * 1000 / $RATE)))")
cat >"$WORK/paced.lua" <<LUA
function delay() return $delay_ms end
LUA

{
    echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
    echo "binary: $(binary_info)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')  wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "load: $CONNECTIONS connections, $SECONDS_EACH s per pass; paced at $RATE/s = one request per connection every $delay_ms ms"
} | tee "$OUT/summary.txt"

measure() {
    local side=$1 url=$2 pace=$3 file
    file=$OUT/$side-$pace.txt
    sync; sleep 2
    if [ "$pace" = paced ]; then
        wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$WORK/paced.lua" "$url" >"$file"
    else
        wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "$url" >"$file"
    fi
    ! grep -q "Non-2xx or 3xx" "$file" || die "$side $pace: answers other than 3xx: $(grep Non-2xx "$file")"
    python3 - "$side" "$pace" "$file" <<'PY' | tee -a "$OUT/summary.txt"
import re, sys
side, pace, path = sys.argv[1:4]
text = open(path).read()
def ms(label):
    m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{side:<10} {pace:<7} {rps:>10.0f} req/s   p50 {ms('50%'):7.2f} ms   p99 {ms('99%'):7.2f} ms")
PY
}

measure portcullis "http://127.0.0.1:$http$path" paced
measure nginx "http://127.0.0.1:$ngx$path" paced
measure portcullis "http://127.0.0.1:$http$path" max
measure nginx "http://127.0.0.1:$ngx$path" max
echo "results in $OUT" >&2
