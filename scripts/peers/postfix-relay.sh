#!/usr/bin/env bash
# A private Postfix instance that relays everything it receives to one next hop.
# Used by the end-to-end tests (Postfix sending through the gateway) and by the
# throughput benchmark (Postfix as the reference relay).
#
#   postfix-relay.sh start DIR LISTEN_PORT NEXT_HOP_PORT   # next hop on 127.0.0.1
#   MILTER=inet:127.0.0.1:PORT postfix-relay.sh start ...  # with a milter
#   postfix-relay.sh stop DIR
#
# Everything lives under DIR: configuration, queue and data; the system's
# Postfix is not touched. Needs root (Postfix's master runs as root).
#
# MILTER=inet:127.0.0.1:PORT passes every message received over SMTP through that
# milter (smtpd_milters), set up as rspamd's MTA integration guide does
# (milter_protocol = 6, milter_mail_macros with the client and sender), except
# that milter_default_action is tempfail, not accept: a milter that does not
# answer makes the client retry instead of letting the message through
# unchecked (which a benchmark would count as checked). Without MILTER, no milter.
set -euo pipefail
cmd=$1 dir=$(realpath -m "$2")

case "$cmd" in
stop)
    postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start|stop DIR ..." >&2; exit 2 ;;
esac

listen=$3 next=$4
mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
chown postfix "$dir/data"
cp /etc/postfix/master.cf "$dir/etc/master.cf"
# Replace the default port-25 listener by ours.
sed -i -E "s/^smtp +inet .*/127.0.0.1:$listen inet n - n - - smtpd/" "$dir/etc/master.cf"
cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-relay.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
relayhost = [127.0.0.1]:$next
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
smtp_dns_support_level = disabled
disable_dns_lookups = yes
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtp_destination_concurrency_limit = 20
default_destination_concurrency_limit = 20
in_flow_delay = 0
CF
if [ -n "${MILTER:-}" ]; then
    cat >> "$dir/etc/main.cf" <<CF
smtpd_milters = $MILTER
non_smtpd_milters =
milter_protocol = 6
milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}
milter_default_action = tempfail
CF
fi
postfix -c "$dir/etc" check
postfix -c "$dir/etc" start >/dev/null
# Wait until the listener answers.
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null; then exit 0; fi
    sleep 0.1
done
echo "postfix did not start listening on $listen; see $dir/maillog" >&2
exit 1
