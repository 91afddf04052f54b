#!/usr/bin/env python3
"""Quarantine list pages with 100,000 held entries: how long the gateway takes
to answer a filtered page of GET /api/quarantine (the query the console's list
page makes), measured from this client on loopback.

    bench/quarantine_list.py                 # 100,000 entries, 30 requests per filter
    ENTRIES=20000 REPEAT=10 bench/quarantine_list.py

The store is filled directly (SQLite, through the schema the gateway created at
its first start): held messages over the last 30 days, 1 or 2 recipients each
among 2,000 users, a category, a score, 3 of 200 rule symbols, a subject from a
small vocabulary. Then the gateway is started on it and each filter is asked
REPEAT times for a page of 50; the figures are the median and the worst
response time (connect to last byte). Target: under 50 ms per filtered page.

Output: the table on stdout, and bench/results/quarantine-list-<UTC>/summary.txt.
"""
import os
import random
import sqlite3
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

ENTRIES = int(os.environ.get("ENTRIES", "100000"))
REPEAT = int(os.environ.get("REPEAT", "30"))
DAY = 24 * 3600 * 1000
WORDS = ["invoice", "payment", "delivery", "account", "password", "offer", "meeting",
         "report", "urgent", "shipment", "order", "newsletter", "webinar", "refund"]


def fill(db_path, n, now):
    rng = random.Random(7)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    symbols = [f"RULE_{i:03d}" for i in range(200)]
    made = 0
    m = 0
    with db:
        while made < n:
            mid = f"B{m:015d}"
            m += 1
            at = now - rng.randrange(30 * DAY)
            category = rng.choices(["spam", "phishing", "malware", "policy"], [80, 12, 3, 5])[0]
            score = round(rng.uniform(8, 40), 2)
            subject = " ".join(rng.sample(WORDS, 3)) + f" {m}"
            sender = f"sender{rng.randrange(20000)}@outside{rng.randrange(500)}.test"
            rcpts = [f"user{rng.randrange(2000)}@example.test" for _ in range(rng.choice([1, 1, 2]))]
            rcpts = sorted(set(rcpts))[: n - made]
            db.execute(
                "INSERT INTO messages (id, received_at, updated_at, status, client_ip, mail_from, size, "
                "subject, score, action, category) VALUES (?, ?, ?, 'quarantined', '192.0.2.1', ?, ?, ?, ?, "
                "'quarantine', ?)",
                (mid, at, at, sender, rng.randrange(2000, 80000), subject, score, category))
            for s in rng.sample(symbols, 3):
                db.execute("INSERT INTO symbols (message, name, score) VALUES (?, ?, ?)",
                           (mid, s, 3.0))
            for r in rcpts:
                db.execute("INSERT INTO recipients (message, address, status, updated_at) "
                           "VALUES (?, ?, 'quarantined', ?)", (mid, r, at))
                db.execute("INSERT INTO held (message, recipient, received_at, status, reason, "
                           "expires_at, updated_at) VALUES (?, ?, ?, 'held', 'RULE', ?, ?)",
                           (mid, r, at, at + 30 * DAY, at))
                made += 1
    db.execute("ANALYZE")
    db.close()
    return m


def timed(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
        assert r.status == 200, r.status
    return (time.perf_counter() - t0) * 1000, body


def main():
    work = b.init(need=())
    out = os.path.join(b.BENCH_DIR, "results",
                       "quarantine-list-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out, exist_ok=True)
    smtp, http, sink = b.free_ports(3)
    data = os.path.join(work, "data")
    config = os.path.join(work, "portcullis.toml")
    b.write_config(config, data, smtp, http, sink)
    gw = b.Gateway(config, http, os.path.join(work, "gateway.log"))
    gw.start()          # creates the store's schema
    gw.stop()
    now = int(time.time() * 1000)
    b.log(f"filling the store with {ENTRIES} held entries")
    t0 = time.time()
    messages = fill(os.path.join(data, "trace.sqlite"), ENTRIES, now)
    b.log(f"{messages} messages, {ENTRIES} entries in {time.time() - t0:.1f} s")
    gw.start()
    base = f"http://127.0.0.1:{http}/api/quarantine?limit=50"
    filters = [
        ("newest page", ""),
        ("one rule, last 2 days", "&symbol=RULE_042&since=2d"),
        ("one rule, 30 days", "&symbol=RULE_042"),
        ("one recipient", "&recipient=user42@example.test"),
        ("category phishing", "&category=phishing"),
        ("still releasable, last 7 days", "&live=true&since=7d"),
        ("text in subject", "&q=invoice%20payment"),
        ("one sender", "&sender=sender123@outside7.test"),
    ]
    lines = [f"date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  cores: {os.cpu_count()}",
             f"binary: {b.binary_info()}",
             f"store: {messages} held messages, {ENTRIES} held entries; {REPEAT} requests per filter, page of 50",
             f"{'filter':<32} {'entries':>7} {'median ms':>9} {'worst ms':>8}"]
    worst_median = 0.0
    for name, q in filters:
        timed(base + q)                     # warm the page cache and statements
        times = []
        for _ in range(REPEAT):
            ms, body = timed(base + q)
            times.append(ms)
        count = body.count(b'"recipient"')
        med = statistics.median(times)
        worst_median = max(worst_median, med)
        lines.append(f"{name:<32} {count:>7} {med:>9.1f} {max(times):>8.1f}")
    lines.append(f"slowest median: {worst_median:.1f} ms (target < 50 ms)")
    gw.stop()
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    b.log(f"results in {out}")


if __name__ == "__main__":
    main()
