#!/usr/bin/env python3
"""Bulk re-scan throughput: the spam corpus held in the quarantine, judged again
with `POST /api/quarantine/bulk {"action": "rescan"}`, in held entries per
second; against `portcullis scan` over the same files in the same run (the
scanner alone, reading plain files), so the ratio shows what reading held mail
back (inflating, the index, the trace) costs on top of scanning.

    bench/quarantine_rescan.py            # eval/spam of the corpus (1,396 messages)
    LIMIT=300 bench/quarantine_rescan.py

The gateway is trained on the corpus's train/ (as bench/quality.sh does), and
its thresholds are set so that every message is held (tag and quarantine far
below any score, reject out of reach). The messages are sent over SMTP from
loopback, 4 sessions at a time, and the run waits until every one is held.
Then: a dry run (judges, changes nothing) and a run that records each new
verdict in the trace but releases nothing, each timed from request to answer.

Output: the table on stdout and bench/results/quarantine-rescan-<UTC>/summary.txt.
"""
import json
import os
import smtplib
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

LIMIT = int(os.environ.get("LIMIT", "0"))


def corpus():
    out = subprocess.run([os.path.join(b.REPO_DIR, "scripts", "corpus.sh")],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def post(http, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{http}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.load(r)


def held(http):
    with urllib.request.urlopen(
            f"http://127.0.0.1:{http}/api/quarantine?live=true&limit=10000", timeout=60) as r:
        return len(json.load(r)["entries"])


def main():
    work = b.init(need=())
    root = corpus()
    spam_dir = os.path.join(root, "eval", "spam")
    files = sorted(os.path.join(spam_dir, f) for f in os.listdir(spam_dir))
    if LIMIT:
        files = files[:LIMIT]
    out = os.path.join(b.BENCH_DIR, "results",
                       "quarantine-rescan-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out, exist_ok=True)
    smtp, http, sink = b.free_ports(3)
    data = os.path.join(work, "data")
    config = os.path.join(work, "portcullis.toml")
    b.write_config(config, data, smtp, http, sink)
    with open(config, "a") as f:
        f.write("\n[scan.thresholds]\ntag = -200000.0\nquarantine = -100000.0\nreject = 1000000000.0\n")
    b.log("training on train/")
    subprocess.run([b.BINARY, "--config", config, "train", "--spam", os.path.join(root, "train", "spam"),
                    "--ham", os.path.join(root, "train", "ham")], check=True, stdout=subprocess.DEVNULL)
    gw = b.Gateway(config, http, os.path.join(work, "gateway.log"))
    gw.start()

    def send(path):
        raw = open(path, "rb").read()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[1]
        # Corpus files have bare LF line ends; SMTP wants CRLF (the gateway
        # refuses bare LF, as it should).
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        with smtplib.SMTP("127.0.0.1", smtp, timeout=60) as s:
            s.sendmail("sender@outside.test", ["user@example.test"], raw)

    b.log(f"holding {len(files)} messages")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, files))
    deadline = time.time() + 300
    while held(http) < len(files):
        if time.time() > deadline:
            b.die(f"only {held(http)} of {len(files)} held")
        time.sleep(0.5)

    t0 = time.perf_counter()
    scan = subprocess.run([b.BINARY, "--config", config, "scan", "--format", "jsonl"] + files,
                          capture_output=True, check=True)
    scan_s = time.perf_counter() - t0
    scanned_files = scan.stdout.count(b"\n")

    runs = []
    for name, body in [
        ("dry run", {"action": "rescan", "dry_run": True, "filter": {}}),
        ("recorded, no release", {"action": "rescan", "filter": {}}),
    ]:
        t0 = time.perf_counter()
        answer = post(http, "/api/quarantine/bulk", body)
        secs = time.perf_counter() - t0
        if answer["scanned"] != len(files) or answer["failed"]:
            b.die(f"{name}: {answer}")
        runs.append((name, answer["scanned"], secs, answer["passing"]))
    gw.stop()

    lines = [f"date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  cores: {os.cpu_count()}",
             f"binary: {b.binary_info()}",
             f"held: {len(files)} messages of eval/spam, one recipient each",
             f"{'what':<28} {'entries':>7} {'seconds':>8} {'entries/s':>9} {'passing':>7}"]
    scan_rate = scanned_files / scan_s
    lines.append(f"{'portcullis scan (files)':<28} {scanned_files:>7} {scan_s:>8.2f} {scan_rate:>9.0f} {'-':>7}")
    for name, n, secs, passing in runs:
        lines.append(f"{'rescan, ' + name:<28} {n:>7} {secs:>8.2f} {n / secs:>9.0f} {passing:>7}")
    dry = runs[0][1] / runs[0][2]
    lines.append(f"rescan (dry run) / portcullis scan: {dry / scan_rate:.2f}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    b.log(f"results in {out}")


if __name__ == "__main__":
    main()
