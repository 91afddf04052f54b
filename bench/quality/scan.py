#!/usr/bin/env python3
"""Runs the evaluation set through one scanner for bench/quality.sh and records
every verdict and how long the whole set took.

    scan.py spamc   --port P [--parallel 2] --daemon-pid PID --out FILE HAM SPAM
    scan.py rspamd  --port P [--parallel 2] --daemon-pid PID --out FILE HAM SPAM
    scan.py portcullis --bin BIN --config CFG --out FILE HAM SPAM

Every message of HAM and SPAM (folders, name order) is scanned once:
- spamc: `spamc -x -R -E` per message against our private spamd, PARALLEL at a time
  (the client SpamAssassin ships, as an MTA filter would call it); the first line
  of the report is "score/required"; flagged = score >= required (5.0);
- rspamd: POST /checkv2 to the normal worker, PARALLEL at a time over fresh HTTP
  connections (what rspamc and MTA milters send; no IP, HELO or envelope given, as
  for the other scanners); flagged = an action other than "no action" and
  "greylist" (greylist is counted on its own);
- portcullis: one `portcullis scan --format jsonl HAM SPAM` process;
  flagged = action != deliver.

FILE (CSV, with a header line) gets one row per message:
    set,file,score,action,flagged,bayes,ms,symbols
set is ham or spam; file the file name up to its first dot (unique within a
set); flagged and bayes are 1 or 0 (bayes: a Bayes/classifier symbol fired); ms
is the time of that message's request, client side (for portcullis its own
elapsed_us); symbols (names of the rules with a non-zero weight, space-separated)
is filled only for the messages the scanner got wrong, to keep the file small.
The last line printed on stdout is the run's timing:
    {"scanner", "messages", "errors", "wall_s", "msgs_per_s", "cpu_s",
     "client_cpu_s", "other_cpu_s", "parallel"}
cpu_s is the CPU time (user + system) the scanner itself used: for the daemons,
their whole process tree (workers and children, also the ones that exited and
were reaped during the run) read from /proc before and after; for portcullis,
the process's own rusage. client_cpu_s is this script's and its spamc
processes'. other_cpu_s is what everything else on the machine used meanwhile
(all cores' busy time from /proc/stat, less the two): on a shared machine it
says how much the wall-clock rate was held back.
"""
import argparse
import concurrent.futures
import csv
import http.client
import json
import os
import re
import resource
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def files_of(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if not f.startswith("."))


def short_name(path):
    return os.path.basename(path).split(".")[0]


def proc_cpu(pid):
    """utime + stime + cutime + cstime of one process, in seconds (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is the state (field 3); utime..cstime are fields 14..17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def tree_cpu(root):
    """CPU seconds of a process and all its living descendants (each one's
    cutime/cstime covers its children that have exited and been reaped)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += proc_cpu(pid)
        todo.extend(children.get(pid, []))
    return total


def machine_busy():
    """CPU seconds all cores have spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu():
    """CPU seconds of this process and its reaped children (the client side)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


REPORT_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\b")


def scan_spamc(port, path):
    with open(path, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(["spamc", "-x", "-d", "127.0.0.1", "-p", str(port), "-t", "300", "-R", "-E"],
                           stdin=f, capture_output=True)
        ms = (time.perf_counter() - t0) * 1000
    out = p.stdout.decode("utf-8", "replace")
    first = out.split("\n", 1)[0].strip()
    m = re.fullmatch(r"(-?[\d.]+)/([\d.]+)", first)
    if not m or p.returncode not in (0, 1):
        raise RuntimeError(f"spamc exit {p.returncode}: {first!r} {p.stderr.decode()[:200]!r}")
    score, required = float(m.group(1)), float(m.group(2))
    symbols = {}
    in_table = False
    for line in out.splitlines():
        if line.startswith("----"):
            in_table = True
            continue
        if in_table:
            r = REPORT_LINE.match(line)
            if r:
                symbols[r.group(2)] = float(r.group(1))
    # With -E, spamc exits 1 for spam (spamd's is_spam: the unrounded score
    # reached required_score), 0 for ham; the printed score is rounded to 0.1.
    flagged = p.returncode == 1
    return {"score": score, "action": "spam" if flagged else "ham", "flagged": flagged, "ms": ms,
            "bayes": any(s.startswith("BAYES_") for s in symbols),
            "symbols": sorted(s for s, v in symbols.items() if v != 0)}


def scan_rspamd(port, path):
    with open(path, "rb") as f:
        body = f.read()
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/checkv2", body=body, headers={"Content-Length": str(len(body))})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    ms = (time.perf_counter() - t0) * 1000
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
    r = json.loads(data)
    action = r.get("action", "?")
    symbols = r.get("symbols", {})
    return {"score": r.get("score"), "action": action,
            "flagged": action not in ("no action", "greylist"), "ms": ms,
            "bayes": any(s in symbols for s in ("BAYES_SPAM", "BAYES_HAM")),
            "symbols": sorted(s for s, v in symbols.items() if v.get("score", 0) != 0)}


def run_pool(scan, port, parallel, ham, spam, daemon_pid):
    jobs = [("ham", p) for p in files_of(ham)] + [("spam", p) for p in files_of(spam)]
    results = [None] * len(jobs)
    errors = []

    def one(i):
        kind, path = jobs[i]
        try:
            results[i] = dict(set=kind, file=short_name(path), **scan(port, path))
        except Exception as e:          # recorded, and the run reports it
            errors.append(f"{path}: {e}")

    cpu0, busy0, client0 = tree_cpu(daemon_pid), machine_busy(), own_cpu()
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(len(jobs))))
    wall = time.perf_counter() - t0
    cpu = tree_cpu(daemon_pid) - cpu0
    busy, client = machine_busy() - busy0, own_cpu() - client0
    return [r for r in results if r], errors, wall, cpu, client, busy


def run_portcullis(binary, config, ham, spam):
    busy0, self0 = machine_busy(), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--config", config, "scan", "--format", "jsonl", ham, spam],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime
    busy = machine_busy() - busy0
    s1 = resource.getrusage(resource.RUSAGE_SELF)
    client = s1.ru_utime + s1.ru_stime - self0.ru_utime - self0.ru_stime
    errors = [l for l in err.decode("utf-8", "replace").splitlines() if l.strip()]
    if p.returncode != 0 and not errors:
        errors.append(f"portcullis scan exited with {p.returncode}")
    results = []
    ham_dir = os.path.realpath(ham)
    for line in out.decode().splitlines():
        v = json.loads(line)
        path = v["path"]
        kind = "ham" if os.path.realpath(os.path.dirname(path)) == ham_dir else "spam"
        symbols = v.get("symbols", [])
        flagged = v["action"] != "deliver"
        results.append({"set": kind, "file": short_name(path), "score": v["score"],
                        "action": v["action"], "flagged": flagged,
                        "ms": v.get("elapsed_us", 0) / 1000,
                        "bayes": any(s["name"].startswith("BAYES") for s in symbols),
                        "symbols": sorted(s["name"] for s in symbols if s.get("score", 0) != 0)})
    return results, errors, wall, cpu, client, busy


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scanner", choices=["spamc", "rspamd", "portcullis"])
    ap.add_argument("ham")
    ap.add_argument("spam")
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--daemon-pid", type=int)
    ap.add_argument("--bin")
    ap.add_argument("--config")
    a = ap.parse_args()

    if a.scanner == "portcullis":
        results, errors, wall, cpu, client, busy = run_portcullis(a.bin, a.config, a.ham, a.spam)
        parallel = 1
    else:
        scan = scan_spamc if a.scanner == "spamc" else scan_rspamd
        results, errors, wall, cpu, client, busy = run_pool(scan, a.port, a.parallel, a.ham, a.spam,
                                                            a.daemon_pid)
        parallel = a.parallel

    names = [(r["set"], r["file"]) for r in results]
    if len(set(names)) != len(names):
        sys.exit("scan.py: two messages of one set share a short name")
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["set", "file", "score", "action", "flagged", "bayes", "ms", "symbols"])
        for r in results:
            wrong = r["flagged"] == (r["set"] == "ham")
            score = r["score"]
            w.writerow([r["set"], r["file"], round(score, 3) if isinstance(score, float) else score,
                        r["action"], int(r["flagged"]), int(r["bayes"]), round(r["ms"], 1),
                        " ".join(r["symbols"]) if wrong else ""])
    for e in errors[:20]:
        print(f"scan.py: {a.scanner}: {e}", file=sys.stderr)
    n = len(results)
    print(json.dumps({"scanner": a.scanner, "messages": n, "errors": len(errors),
                      "wall_s": round(wall, 3), "msgs_per_s": round(n / wall, 2) if wall else None,
                      "cpu_s": round(cpu, 2), "client_cpu_s": round(client, 2),
                      "other_cpu_s": round(max(0.0, busy - cpu - client), 2),
                      "parallel": parallel}))


if __name__ == "__main__":
    main()
