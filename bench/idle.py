#!/usr/bin/env python3
"""Connections: memory of the gateway holding 1,000 concurrent idle SMTP sessions,
with Postfix holding the same sessions as the reference, in the same run.

    bench/idle.py                      # 1,000 sessions, held 10 s
    bench/idle.py --sessions 1500 --hold 30 --no-postfix

Each session connects, reads the 220 greeting, sends EHLO, reads the 250 and then
stays silent. Measured on the server side:

  gateway  VmRSS of the one process (/proc/PID/status) before the sessions, while
           they are held (the highest of one sample a second) and after they are
           closed; its CPU time while they sit idle; target < 200 MB held.
  postfix  the same load on a private Postfix (scripts/peers/postfix-relay.sh,
           process limit raised above the session count): the sum of Pss
           (/proc/PID/smaps_rollup; shared pages divided among sharers, so the sum
           is not inflated as a sum of RSS would be) and of VmRSS over the master
           and all its children, one smtpd per session.

At the end of the hold every session sends NOOP and must get 250, so a server
that silently dropped idle sessions does not pass. The gateway's configuration
raises max_connections_per_ip above the session count (default 50 per address).
Results go to bench/results/idle-<UTC>/.
"""
import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


async def read_reply(reader):
    """One SMTP reply (possibly multi-line); returns its code."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


class Sessions:
    def __init__(self, port, n):
        self.port, self.n = port, n
        self.open = []        # (reader, writer)
        self.failures = {}

    async def one(self, sem, i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 30)
                code = await asyncio.wait_for(read_reply(r), 30)
                if code != 220:
                    raise ConnectionError(f"greeting {code}")
                w.write(f"EHLO idle{i}.bench.test\r\n".encode())
                await w.drain()
                code = await asyncio.wait_for(read_reply(r), 30)
                if code != 250:
                    raise ConnectionError(f"EHLO {code}")
                self.open.append((r, w))
            except (OSError, ConnectionError, asyncio.TimeoutError, ValueError) as e:
                key = type(e).__name__ + ": " + str(e)[:80]
                self.failures[key] = self.failures.get(key, 0) + 1

    async def connect_all(self):
        sem = asyncio.Semaphore(100)
        await asyncio.gather(*(self.one(sem, i) for i in range(self.n)))

    async def noop_all(self):
        async def noop(r, w):
            try:
                w.write(b"NOOP\r\n")
                await w.drain()
                return await asyncio.wait_for(read_reply(r), 30) == 250
            except (OSError, ConnectionError, asyncio.TimeoutError, ValueError):
                return False
        ok = await asyncio.gather(*(noop(r, w) for r, w in self.open))
        return sum(ok)

    async def close_all(self):
        for r, w in self.open:
            try:
                w.write(b"QUIT\r\n")
                w.close()
            except OSError:
                pass
        await asyncio.sleep(0.5)
        self.open.clear()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def tree(root):
    """root and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def postfix_memory(master):
    pids = tree(master)
    return {"processes": len(pids),
            "pss_mb": round(sum(benchlib.pss_kb(p) for p in pids) / 1024, 1),
            "rss_mb": round(sum(benchlib.vm_rss_kb(p) for p in pids if os.path.exists(f"/proc/{p}"))
                            / 1024, 1)}


def hold_and_sample(sessions, hold, sample):
    """Holds the sessions for `hold` seconds, sampling once a second; returns
    (highest sample, NOOP successes)."""
    best = None
    for _ in range(max(1, int(hold))):
        time.sleep(1)
        s = sample()
        if best is None or s["key"] > best["key"]:
            best = s
    alive = asyncio.get_event_loop().run_until_complete(sessions.noop_all())
    return best, alive


def run_gateway(args, work):
    smtp, http, sink = benchlib.free_ports(3)
    config = os.path.join(work, "gateway.toml")
    benchlib.write_config(
        config, os.path.join(work, "gw"), smtp, http, sink,
        smtp_extra=f"max_connections_per_ip = {args.sessions + 100}\n"
                   f"max_connections = {max(2000, args.sessions + 100)}")
    gw = benchlib.Gateway(config, http, os.path.join(work, "gateway.log"))
    gw.start()
    pid = gw.pid()
    time.sleep(2)
    before = {"rss_mb": round(benchlib.vm_rss_kb(pid) / 1024, 1), "threads": threads(pid)}
    benchlib.log(f"gateway: {before['rss_mb']} MB before; opening {args.sessions} sessions")
    loop = asyncio.get_event_loop()
    sessions = Sessions(smtp, args.sessions)
    t = time.time()
    loop.run_until_complete(sessions.connect_all())
    connect_s = time.time() - t
    cpu0, t0 = cpu_seconds(pid), time.time()

    def sample():
        rss = benchlib.vm_rss_kb(pid)
        return {"key": rss, "rss_mb": round(rss / 1024, 1), "threads": threads(pid)}

    held, alive = hold_and_sample(sessions, args.hold, sample)
    cpu_pct = round((cpu_seconds(pid) - cpu0) / (time.time() - t0) * 100, 1)
    loop.run_until_complete(sessions.close_all())
    time.sleep(2)
    after = round(benchlib.vm_rss_kb(pid) / 1024, 1)
    gw.stop()
    log = open(os.path.join(work, "gateway.log"), errors="replace").read().splitlines()
    warnings = [line for line in log if (" WARN " in line or " ERROR " in line)
                and "no TLS certificate configured" not in line]
    opened = args.sessions - sum(sessions.failures.values())
    return {
        "sessions_opened": opened, "open_failures": sessions.failures,
        "connect_seconds": round(connect_s, 2), "alive_at_end": alive,
        "rss_before_mb": before["rss_mb"], "rss_held_mb": held["rss_mb"], "rss_after_mb": after,
        "threads_before": before["threads"], "threads_held": held["threads"],
        "kb_per_session": round((held["rss_mb"] - before["rss_mb"]) * 1024 / max(1, opened), 1),
        "cpu_percent_while_idle": cpu_pct,
        "log_warnings": warnings[:20],
    }


def run_postfix(args, work):
    listen, next_hop = benchlib.free_ports(2)
    pdir = os.path.join(work, "postfix")
    benchlib.start_postfix(pdir, listen, next_hop)
    # One smtpd per session: raise the process limit above the session count.
    subprocess.run(["postconf", "-c", f"{pdir}/etc", "-e",
                    f"default_process_limit = {args.sessions + 100}"], check=True)
    subprocess.run(["postfix", "-c", f"{pdir}/etc", "reload"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    master = int(open(f"{pdir}/queue/pid/master.pid").read().split()[0])
    before = postfix_memory(master)
    benchlib.log(f"postfix: {before['pss_mb']} MB Pss before; opening {args.sessions} sessions")
    loop = asyncio.get_event_loop()
    sessions = Sessions(listen, args.sessions)
    t = time.time()
    loop.run_until_complete(sessions.connect_all())
    connect_s = time.time() - t

    def sample():
        m = postfix_memory(master)
        m["key"] = m["pss_mb"]
        return m

    held, alive = hold_and_sample(sessions, args.hold, sample)
    loop.run_until_complete(sessions.close_all())
    time.sleep(2)
    after = postfix_memory(master)
    benchlib.stop_postfix(pdir)
    opened = args.sessions - sum(sessions.failures.values())
    return {
        "sessions_opened": opened, "open_failures": sessions.failures,
        "connect_seconds": round(connect_s, 2), "alive_at_end": alive,
        "before": before, "held": {k: v for k, v in held.items() if k != "key"},
        "after": after,
        "kb_per_session_pss": round((held["pss_mb"] - before["pss_mb"]) * 1024 / max(1, opened), 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=10.0, help="seconds to hold them")
    ap.add_argument("--no-postfix", action="store_true", help="skip the Postfix reference")
    ap.add_argument("--out", default=os.path.join(
        benchlib.BENCH_DIR, "results", "idle-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    args = ap.parse_args()

    # Our descriptors (the gateway inherits the same limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.sessions * 2 + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    asyncio.set_event_loop(asyncio.new_event_loop())
    work = benchlib.init(need=("postfix", "postconf") if not args.no_postfix else ())
    os.makedirs(args.out, exist_ok=True)

    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "cores": os.cpu_count(), "sessions": args.sessions, "hold_seconds": args.hold}
    result["portcullis"] = run_gateway(args, work)
    print(json.dumps(result["portcullis"]), file=sys.stderr)
    if not args.no_postfix:
        result["postfix"] = run_postfix(args, work)
        print(json.dumps(result["postfix"]), file=sys.stderr)
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)

    g = result["portcullis"]
    lines = [
        f"date {result['date']}  cores {result['cores']}  sessions {args.sessions}  hold {args.hold:g} s",
        "binary: " + benchlib.binary_info(),
        f"portcullis  opened {g['sessions_opened']}, alive at end {g['alive_at_end']}, "
        f"failures {g['open_failures'] or 0}",
        f"portcullis  VmRSS before {g['rss_before_mb']} MB, holding {g['rss_held_mb']} MB, "
        f"after {g['rss_after_mb']} MB; {g['kb_per_session']} KB per session; "
        f"threads {g['threads_before']} -> {g['threads_held']}; "
        f"CPU while idle {g['cpu_percent_while_idle']}%  (target < 200 MB)",
    ]
    ok = g["sessions_opened"] == args.sessions and g["alive_at_end"] == args.sessions \
        and g["rss_held_mb"] < 200
    if "postfix" in result:
        p = result["postfix"]
        lines += [
            f"postfix     opened {p['sessions_opened']}, alive at end {p['alive_at_end']}, "
            f"processes {p['before']['processes']} -> {p['held']['processes']}",
            f"postfix     Pss before {p['before']['pss_mb']} MB, holding {p['held']['pss_mb']} MB "
            f"(sum of RSS {p['held']['rss_mb']} MB), after {p['after']['pss_mb']} MB; "
            f"{p['kb_per_session_pss']} KB per session",
            f"memory held, portcullis/postfix: {round(g['rss_held_mb'] / p['held']['pss_mb'], 3)}",
        ]
    lines.append("PASS" if ok else "FAIL")
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"results in {args.out}", file=sys.stderr)
    if not ok:
        benchlib.mark_failed()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
