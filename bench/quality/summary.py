#!/usr/bin/env python3
"""The summary of a bench/quality.sh run: reads OUT/<scanner>.csv (one row per
message, from scan.py), OUT/runs.jsonl (timing and training of each scanner) and
prints the table; writes OUT/summary.json.

    summary.py OUT CORES

Per core: msgs/s divided by the cores the scanner can use ("cores" in
runs.jsonl, from quality.sh: its children or workers and the client's
parallelism, capped at CORES; 1 for portcullis scan, a single thread). Per CPU-second: messages divided by the CPU time the scanner itself used
(its process tree; not the client), a figure less shaken by the other work on a
shared machine.
"""
import csv
import json
import os
import sys
from collections import Counter

NAMES = {"spamassassin": "SpamAssassin", "rspamd": "rspamd", "portcullis": "Portcullis"}
key_of = {v: k for k, v in NAMES.items()}


def pct(a, b):
    return 100.0 * a / b if b else 0.0


def main():
    out, cores = sys.argv[1], int(sys.argv[2])
    runs = {}
    with open(os.path.join(out, "runs.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            runs.setdefault(r["scanner"], {}).update(r)
    rows = {}
    for key in ("spamassassin", "rspamd", "portcullis"):
        path = os.path.join(out, f"{key}.csv")
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            msgs = list(csv.DictReader(f))
        for m in msgs:
            m["flagged"] = m["flagged"] == "1"
            m["bayes"] = m["bayes"] == "1"
            m["symbols"] = m["symbols"].split()
        ham = [m for m in msgs if m["set"] == "ham"]
        spam = [m for m in msgs if m["set"] == "spam"]
        run = runs.get(key, {})
        given = run.get("cores") or (1 if key == "portcullis" else min(run.get("parallel", cores), cores))
        rate = run.get("msgs_per_s") or 0
        cpu = run.get("cpu_s") or 0
        row = {
            "scanner": NAMES[key],
            "ham": len(ham), "ham_flagged": sum(m["flagged"] for m in ham),
            "spam": len(spam), "spam_caught": sum(m["flagged"] for m in spam),
            "msgs_per_s": rate, "cores": given,
            "msgs_per_s_per_core": round(rate / given, 2) if rate else None,
            "cpu_s": cpu, "msgs_per_cpu_s": round(len(msgs) / cpu, 1) if cpu else None,
            "wall_s": run.get("wall_s"), "errors": run.get("errors"),
            "bayes_fired_pct": round(pct(sum(m["bayes"] for m in msgs), len(msgs)), 1),
            "actions": {s: dict(Counter(m["action"] for m in msgs if m["set"] == s))
                        for s in ("ham", "spam")},
            "training": run.get("training"),
        }
        row["ham_flagged_pct"] = round(pct(row["ham_flagged"], row["ham"]), 2)
        row["spam_caught_pct"] = round(pct(row["spam_caught"], row["spam"]), 2)
        # The rules behind the false positives, most frequent first.
        fp = Counter(s for m in ham if m["flagged"] for s in m.get("symbols", []))
        row["false_positive_symbols"] = fp.most_common(8)
        rows[key] = row

    print(f"{'scanner':<13} {'ham flagged':>17} {'spam caught':>18} {'msgs/s':>8} "
          f"{'cores':>5} {'per core':>8} {'msgs/CPU-s':>10} {'Bayes fired':>11}")
    for r in rows.values():
        ham = f"{r['ham_flagged']}/{r['ham']} ({r['ham_flagged_pct']:.2f}%)"
        spam = f"{r['spam_caught']}/{r['spam']} ({r['spam_caught_pct']:.1f}%)"
        print(f"{r['scanner']:<13} {ham:>17} {spam:>18} {r['msgs_per_s'] or 0:>8.1f} "
              f"{r['cores']:>5} {r['msgs_per_s_per_core'] or 0:>8.1f} "
              f"{r['msgs_per_cpu_s'] or 0:>10.1f} {r['bayes_fired_pct']:>10.1f}%")
    ratio = {}
    if "portcullis" in rows and "rspamd" in rows:
        p, r = rows["portcullis"], rows["rspamd"]
        if p["msgs_per_s_per_core"] and r["msgs_per_s_per_core"]:
            ratio["per_core"] = round(p["msgs_per_s_per_core"] / r["msgs_per_s_per_core"], 2)
        if p["msgs_per_cpu_s"] and r["msgs_per_cpu_s"]:
            ratio["per_cpu_s"] = round(p["msgs_per_cpu_s"] / r["msgs_per_cpu_s"], 2)
        print(f"portcullis per core / rspamd per core: {ratio.get('per_core')}"
              f" (per CPU-second: {ratio.get('per_cpu_s')})")
    # Other processes' CPU while a scanner ran, in cores on average.
    others = {k: runs[k]["other_cpu_s"] / runs[k]["wall_s"] for k in rows
              if runs.get(k, {}).get("other_cpu_s") is not None and runs[k].get("wall_s")}
    for k, r in rows.items():
        r["other_cores_during_run"] = round(others[k], 2) if k in others else None
    print("CPU: scanner's own / its client's / everything else's, in seconds: "
          + "; ".join(f"{NAMES[k]} {runs[k].get('cpu_s')} / {runs[k].get('client_cpu_s')}"
                      f" / {runs[k].get('other_cpu_s')}" for k in rows))
    busy = [f"{NAMES[k]} {v:.2f}" for k, v in others.items() if v > 0.25]
    if busy:
        print(f"NOTE: other processes used CPU while scanners ran (cores on average: "
              f"{', '.join(busy)} of {cores}): those msgs/s figures are held back by it;"
              " msgs/CPU-s (the scanner's own CPU time) is less affected")
    for r in rows.values():
        notes = []
        if r["errors"]:
            notes.append(f"{r['errors']} messages failed to scan")
        acts = ", ".join(f"{s} {dict(sorted(a.items()))}" for s, a in r["actions"].items())
        notes.append(f"actions: {acts}")
        if runs.get(key_of[r["scanner"]], {}).get("workers"):
            notes.append(f"normal workers: {runs[key_of[r['scanner']]]['workers']}")
        if r["training"]:
            notes.append(f"training: {r['training']}")
        if r["false_positive_symbols"]:
            notes.append("rules on flagged ham: "
                         + ", ".join(f"{s} {n}" for s, n in r["false_positive_symbols"]))
        print(f"{r['scanner']}: " + "; ".join(notes))
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"scanners": rows, "portcullis_over_rspamd": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
