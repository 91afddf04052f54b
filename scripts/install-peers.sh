#!/usr/bin/env bash
# Installs the test peers from Debian's packages if any is missing:
#   swaks        an SMTP client with every knob (TLS, AUTH, pipelining, raw data)
#   postfix      a real MTA as relay and smtp-source / smtp-sink for load and sinks
#   dnsmasq-base a local DNS server for MX lookups
#   libnet-ssleay-perl  TLS for swaks
#   clamav-daemon       clamd, the virus scanner (tests give it their own small
#                       signature file: no signature download is needed)
#   clamav-testfiles    harmless files that ClamAV's test signatures detect
#   chromium, nodejs    the console's browser test: Debian's chromium driven by
#                       playwright-core from tests/browser (npm ci there, never a
#                       browser download of its own)
set -euo pipefail

# playwright-core as tests/browser/package-lock.json pins it, unless it is there.
browser_test_deps() {
    local dir
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
    if (cd "$dir" && node -e 'const l = require("./package-lock.json").packages["node_modules/playwright-core"].version;
        process.exit(require("./node_modules/playwright-core/package.json").version === l ? 0 : 1)' 2>/dev/null); then
        return 0
    fi
    echo "== npm ci in tests/browser"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        || { echo "npm ci in $dir failed" >&2; exit 1; }
}

need=()
command -v swaks >/dev/null || need+=(swaks)
{ command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ]; } || need+=(postfix)
{ command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ]; } || need+=(dnsmasq-base)
command -v openssl >/dev/null || need+=(openssl)
{ command -v clamd >/dev/null || [ -x /usr/sbin/clamd ]; } || need+=(clamav-daemon)
command -v sigtool >/dev/null || need+=(clamav)
[ -f /usr/share/clamav-testfiles/clam.exe ] || need+=(clamav-testfiles)
# swaks speaks TLS through Net::SSLeay, a recommended (not required) package.
perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
perl -MIO::Socket::INET6 -e1 2>/dev/null || need+=(libio-socket-inet6-perl)
[ -x /usr/bin/chromium ] || need+=(chromium)
{ command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
[ ${#need[@]} -eq 0 ] && { browser_test_deps; exit 0; }

echo "== installing test peers: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install ${need[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix must not start a system instance on port 25 of the test machine.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -qq || { echo "apt-get update failed: cannot install ${need[*]}" >&2; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "apt-get install ${need[*]} failed" >&2; exit 1; }
browser_test_deps
