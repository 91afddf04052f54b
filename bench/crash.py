#!/usr/bin/env python3
"""Crash safety: is every message the gateway acknowledged delivered after kill -9?

    bench/crash.py                  # 10 rounds
    bench/crash.py --rounds 3 --threads 4 --seconds 5

Each round starts a fresh gateway and a fresh smtp-sink that writes every
message it receives to its own file (-d). Client threads send over SMTP, each
message carrying a unique serial (X-Bench-Serial, also in the Message-ID) and a
SHA-256 of its body (X-Bench-Body-SHA256); a message counts as acknowledged only
when the reply after DATA is 250. While they send, the gateway is killed with
SIGKILL at a random moment and restarted on the same configuration and data
directory; the clients reconnect and carry on. When they have stopped, the
script polls /healthz until the queue is empty and compares what the sink holds
with the acknowledged set:

  lost        acknowledged but never delivered (must be 0)
  duplicates  extra copies of a serial at the sink. Allowed when the first copy
              reached the sink before the kill (delivered, but the gateway died
              before it marked the message done, so it delivers it again after
              the restart, as any MTA would); a duplicate whose copies all came
              after the kill is a failure.
  corrupt     a delivered copy whose body does not match its digest (must be 0)
  unacked     delivered although the client saw no 250 (allowed: the connection
              died between the fsync and the reply)

Odd rounds use a fast sink; even rounds a sink that waits 1 s before answering
DATA, so a backlog sits in the queue and deliveries are in flight when the kill
comes. Retries are set short (1s-5s) so a round does not wait for the default
5-minute retry.

Spool files that recovery sets aside as damaged (queue/corrupt/) are listed with
whether their message had been acknowledged.

Exit status 1 if any round lost or corrupted an acknowledged message (or set one
aside as damaged), delivered one twice without the kill to explain it, or the
gateway failed to restart or drain. Results go to bench/results/crash-<UTC>/.
"""
import argparse
import glob
import hashlib
import itertools
import json
import os
import random
import re
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

FROM = "sender@bench.test"
TO = "rcpt@example.test"
WORDS = ("gate", "portcullis", "queue", "spool", "fsync", "relay", "mail", "crash",
         "safety", "durable", "message", "sender", "recipient", "deliver", "kill")


def make_message(round_no, serial, rng):
    lines = []
    size = rng.randint(1_000, 16_000)
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
        lines.append(line)
        total += len(line) + 2
    body = "\r\n".join(lines) + "\r\n"
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    head = (
        f"From: <{FROM}>\r\nTo: <{TO}>\r\n"
        f"Subject: crash round {round_no} serial {serial}\r\n"
        f"Message-ID: <crash-{round_no}-{serial}@bench.test>\r\n"
        f"X-Bench-Serial: {serial}\r\nX-Bench-Body-SHA256: {digest}\r\n"
    )
    return (head + "\r\n" + body).encode()


class Client:
    """Threads sending until stopped; records what got a 250 after DATA."""

    def __init__(self, port, round_no, threads):
        self.port, self.round_no, self.threads = port, round_no, threads
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.serials = itertools.count(1)
        self.acked = {}          # serial -> reply text (names the queue id)
        self.refused = {}        # serial -> reply code (a 4xx/5xx after DATA)
        self.broken = set()      # serials whose transaction died without a reply
        self.connect_failures = 0
        self.workers = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for w in self.workers:
            w.start()

    def finish(self):
        self.stop.set()
        for w in self.workers:
            w.join(timeout=60)

    def run(self, tid):
        rng = random.Random(self.round_no * 1000 + tid)
        s = None
        while not self.stop.is_set():
            if s is None:
                try:
                    s = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
                    s.ehlo("client.bench.test")
                except (OSError, smtplib.SMTPException):
                    s = None
                    with self.lock:
                        self.connect_failures += 1
                    time.sleep(0.05)
                    continue
            with self.lock:
                serial = next(self.serials)
            msg = make_message(self.round_no, serial, rng)
            try:
                code, _ = s.mail(FROM)
                if code != 250:
                    raise smtplib.SMTPException(f"MAIL {code}")
                code, _ = s.rcpt(TO)
                if code != 250:
                    raise smtplib.SMTPException(f"RCPT {code}")
                code, text = s.data(msg)
                with self.lock:
                    if code == 250:
                        self.acked[serial] = text.decode(errors="replace")
                    else:
                        self.refused[serial] = code
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.broken.add(serial)
                try:
                    s.close()
                except OSError:
                    pass
                s = None
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass


def qid(reply):
    """The queue id in a 250 reply ("... queued as ID")."""
    m = re.search(r"queued as (\S+)", reply or "")
    return m.group(1) if m else None


SERIAL = re.compile(rb"^X-Bench-Serial: (\d+)$", re.M)
DIGEST = re.compile(rb"^X-Bench-Body-SHA256: ([0-9a-f]+)$", re.M)


def read_sink(dump_dir):
    """serial -> [(intact, time written)] for every message the sink holds."""
    got = {}
    for path in glob.glob(os.path.join(dump_dir, "**", "*"), recursive=True):
        if not os.path.isfile(path):
            continue
        data = open(path, "rb").read().replace(b"\r\n", b"\n")
        m, d = SERIAL.search(data), DIGEST.search(data)
        if not m:
            got.setdefault("unparsable", []).append(path)
            continue
        serial = int(m.group(1))
        # The body: after the first empty line following our headers; the dump
        # ends with one extra empty line.
        end = data.find(b"\n\n", m.end())
        body = data[end + 2:]
        if body.endswith(b"\n\n"):
            body = body[:-1]
        lines = body.rstrip(b"\n").split(b"\n")
        intact = bool(d) and hashlib.sha256(b"\n".join(lines)).hexdigest().encode() == d.group(1)
        got.setdefault(serial, []).append((intact, os.stat(path).st_mtime))
    return got


def run_round(args, work, out, round_no):
    rdir = os.path.join(work, f"round{round_no}")
    os.makedirs(rdir)
    smtp, http, sink = benchlib.free_ports(3)
    dump = os.path.join(rdir, "sink")
    slow = round_no % 2 == 0
    sink_proc = benchlib.start_sink(sink, os.path.join(rdir, "sink.log"), dump + "/%H%M%S.",
                                    extra=("-w", "1") if slow else ())
    config = os.path.join(rdir, "portcullis.toml")
    benchlib.write_config(
        config, os.path.join(rdir, "data"), smtp, http, sink,
        queue_extra='retry_initial = "1s"\nretry_max = "5s"\nper_destination = 100',
    )
    gw_log = os.path.join(rdir, "gateway.log")
    gw = benchlib.Gateway(config, http, gw_log)
    gw.start()

    client = Client(smtp, round_no, args.threads)
    rng = random.Random(args.seed * 1000 + round_no)
    kill_at = rng.uniform(args.seconds * 0.2, args.seconds * 0.6)
    t0 = time.time()
    client.start()
    time.sleep(kill_at)
    with client.lock:
        acked_before_kill = len(client.acked)
    queued_at_kill = None
    try:
        queued_at_kill = gw.health()["queue"]["messages"]
    except OSError:
        pass
    kill_time = time.time()
    gw.kill9()
    time.sleep(args.down)
    t_restart = time.time()
    gw.start()
    restart_s = time.time() - t_restart
    remaining = args.seconds - (time.time() - t0)
    if remaining > 0:
        time.sleep(remaining)
    client.finish()
    drained = gw.wait_drained(args.drain_timeout)
    time.sleep(1)       # the sink has answered every delivery; let it close files
    got = read_sink(dump)
    gw.stop()
    # Spool files recovery set aside as damaged: a file cut short by the kill
    # must be one whose message was never acknowledged.
    acked_ids = {qid(r) for r in client.acked.values()}
    corrupt_dir = os.path.join(rdir, "data", "queue", "corrupt")
    set_aside = []
    for name in sorted(os.listdir(corrupt_dir)) if os.path.isdir(corrupt_dir) else []:
        path = os.path.join(corrupt_dir, name)
        set_aside.append({"file": name, "bytes": os.path.getsize(path),
                          "acknowledged": name.split(".")[0] in acked_ids,
                          "starts": open(path, "rb").read(60).decode(errors="replace")})
    benchlib.stop_process(sink_proc)

    unparsable = got.pop("unparsable", [])
    acked = set(client.acked)
    received = set(got)
    lost = sorted(acked - received)
    duplicates = sum(len(v) - 1 for v in got.values())
    corrupt = sorted(s for s, v in got.items() if not all(ok for ok, _ in v))
    unacked = sorted(received - acked)
    # A duplicate is explained by the kill when its first copy reached the sink
    # just before the kill (delivered, but not yet marked done in the spool).
    dups = {s: sorted(t for _, t in v) for s, v in got.items() if len(v) > 1}
    first_before_kill = [kill_time - ts[0] for ts in dups.values()]
    dups_unexplained = sum(1 for ts in dups.values() if ts[0] > kill_time)
    log_lines = open(gw_log, errors="replace").read().splitlines()
    problems = [l for l in log_lines
                if re.search(r"\s(WARN|ERROR)\s", l) and "no TLS certificate configured" not in l]
    recovered = [l for l in log_lines if "recovered from spool" in l]
    result = {
        "round": round_no,
        "sink": "slow (-w 1)" if slow else "fast",
        "attempted": next(client.serials) - 1,
        "acked": len(acked),
        "acked_before_kill": acked_before_kill,
        "queued_at_kill": queued_at_kill,
        "kill_at_s": round(kill_at, 2),
        "restart_s": round(restart_s, 2),
        "drain_s": None if drained is None else round(drained, 1),
        "delivered_copies": sum(len(v) for v in got.values()),
        "lost": len(lost),
        "duplicates": duplicates,
        # seconds between the first copy of a duplicate reaching the sink and the kill
        "dup_first_copy_before_kill_s": [round(min(first_before_kill), 3),
                                         round(max(first_before_kill), 3)] if dups else None,
        "dups_first_copy_after_kill": dups_unexplained,
        "corrupt": len(corrupt),
        "unacked_delivered": len(unacked),
        "refused_after_data": len(client.refused),
        "broken_transactions": len(client.broken),
        "connect_failures": client.connect_failures,
        "unparsable_dumps": len(unparsable),
        "spool_set_aside": len(set_aside),
        "spool_set_aside_acked": sum(1 for x in set_aside if x["acknowledged"]),
        "gateway_warnings": len(problems),
        "recovered_line": recovered[0].split("INFO")[-1].strip() if recovered else None,
    }
    with open(os.path.join(out, f"round{round_no}.details.json"), "w") as f:
        json.dump({
            "result": result,
            "lost": [{"serial": s, "reply": client.acked[s]} for s in lost],
            "corrupt": corrupt,
            # When each copy of a duplicated message reached the sink, in seconds
            # relative to the kill, and what the gateway logged about it.
            "duplicates": {
                s: {"copies_at_s": [round(t - kill_time, 3) for t in ts],
                    "log": [l for l in log_lines if qid(client.acked.get(s)) and
                            qid(client.acked.get(s)) in l][:10]}
                for s, ts in sorted(dups.items())},
            "kill_time": kill_time,
            "unacked_delivered": unacked,
            "refused_after_data": client.refused,
            "gateway_warnings": problems[:200],
            "spool_set_aside": set_aside,
        }, f, indent=1)
    failed = bool(lost or corrupt or drained is None or unparsable or dups_unexplained
                  or result["spool_set_aside_acked"])
    if failed:
        benchlib.mark_failed()
        # Keep the gateway's log next to the results for the investigation.
        with open(os.path.join(out, f"round{round_no}.gateway.log"), "w") as f:
            f.write("\n".join(log_lines) + "\n")
    return result, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0, help="client run time per round")
    ap.add_argument("--down", type=float, default=0.5, help="seconds between kill and restart")
    ap.add_argument("--drain-timeout", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=0, help="varies the moments of the kills")
    ap.add_argument("--out", default=os.path.join(
        benchlib.BENCH_DIR, "results", "crash-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    args = ap.parse_args()

    work = benchlib.init()
    os.makedirs(args.out, exist_ok=True)
    summary = open(os.path.join(args.out, "summary.txt"), "w")

    def say(line):
        print(line, flush=True)
        summary.write(line + "\n")
        summary.flush()

    say(f"date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  cores: {os.cpu_count()}"
        f"  rounds: {args.rounds}  threads: {args.threads}  seconds: {args.seconds}  seed: {args.seed}")
    say("binary: " + benchlib.binary_info())
    any_failed = False
    with open(os.path.join(args.out, "rounds.jsonl"), "w") as jl:
        for r in range(1, args.rounds + 1):
            benchlib.log(f"round {r}")
            result, failed = run_round(args, work, args.out, r)
            any_failed |= failed
            jl.write(json.dumps(result) + "\n")
            jl.flush()
            print(json.dumps(result), file=sys.stderr, flush=True)
    rounds = [json.loads(l) for l in open(os.path.join(args.out, "rounds.jsonl"))]
    say(f"{'round':>5} {'sink':>11} {'acked':>6} {'queued@kill':>11} {'lost':>4} "
        f"{'dups':>4} {'corrupt':>7} {'unacked-dlv':>11} {'restart s':>9} {'drain s':>7} {'warn':>4}"
        f"  dup 1st copy before kill (s)")
    for x in rounds:
        say(f"{x['round']:>5} {x['sink']:>11} {x['acked']:>6} {x['queued_at_kill']!s:>11} "
            f"{x['lost']:>4} {x['duplicates']:>4} {x['corrupt']:>7} {x['unacked_delivered']:>11} "
            f"{x['restart_s']:>9} {x['drain_s']!s:>7} {x['gateway_warnings']:>4}"
            f"  {x['dup_first_copy_before_kill_s'] or '-'}")
    say(f"total acknowledged {sum(x['acked'] for x in rounds)}, "
        f"lost {sum(x['lost'] for x in rounds)}, "
        f"duplicates {sum(x['duplicates'] for x in rounds)}, "
        f"corrupt {sum(x['corrupt'] for x in rounds)}")
    say("FAIL" if any_failed else "PASS: no acknowledged message lost")
    print(f"results in {args.out}", file=sys.stderr)
    sys.exit(1 if any_failed else 0)


if __name__ == "__main__":
    main()
