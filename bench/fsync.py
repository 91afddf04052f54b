#!/usr/bin/env python3
"""The disk's floor under the end-of-DATA latency: how long does it take to
create a 5 KiB file, fsync it and fsync its folder (what the gateway's spool does
before each 250), with 1 and with 20 writers at once?

    bench/fsync.py [DIR] [--seconds 5] [--no-dir]

DIR defaults to a temporary directory under $TMPDIR (use the filesystem the
gateway's data_dir is on). Prints p50/p90/p99/max in milliseconds per writer
count, as JSON lines; no SMTP involved, so this is pure storage cost plus
scheduling on this machine. --no-dir leaves out the folder fsync, for comparison
(Postfix fsyncs the queue file only).
"""
import argparse
import json
import os
import tempfile
import threading
import time


def writer(dir_, stop, lat, tid, sync_dir):
    payload = os.urandom(5120)
    n = 0
    while not stop.is_set():
        path = os.path.join(dir_, f"{tid}-{n}.msg")
        t = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, payload)
        os.fsync(fd)
        os.close(fd)
        if sync_dir:
            dfd = os.open(dir_, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        lat.append(time.perf_counter() - t)
        os.unlink(path)
        n += 1


def measure(dir_, writers, seconds, sync_dir):
    stop, lat = threading.Event(), []
    threads = [threading.Thread(target=writer, args=(dir_, stop, lat, i, sync_dir))
               for i in range(writers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    lat.sort()
    q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)  # noqa: E731
    return {"writers": writers, "dir_fsync": sync_dir, "syncs": len(lat), "per_s": round(len(lat) / seconds),
            "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": q(1.0)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-dir", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="fsync-probe.") as d:
        for w in (1, 20):
            print(json.dumps(measure(d, w, args.seconds, not args.no_dir)), flush=True)
