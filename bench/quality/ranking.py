#!/usr/bin/env python3
"""How well each scanner of a bench/quality.sh run orders the evaluation set,
whatever its thresholds: reads OUT/<scanner>.csv (one row per message, with its
score) and prints, for each scanner, the spam caught when the threshold sits
just above the k-th highest-scoring ham (k = 0, 3 = 0.2% of eval/'s ham, 10,
20), and how many ham a threshold catching 97% of spam would flag.

    ranking.py OUT [OUT ...]

A threshold read off eval/ this way is a measurement of the ordering, never a
setting to use: the shipped thresholds are chosen on train/ only. Ties count
against the scanner (a spam scoring exactly the threshold is not caught; a ham
scoring exactly the 97% threshold is flagged).
"""
import csv
import os
import sys

SCANNERS = ("spamassassin", "rspamd", "portcullis")


def ranking(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ham = sorted((float(r["score"]) for r in rows if r["set"] == "ham"), reverse=True)
    spam = sorted((float(r["score"]) for r in rows if r["set"] == "spam"), reverse=True)
    at = {}
    for k in (0, 3, 10, 20):
        t = ham[k] if k < len(ham) else float("-inf")
        at[k] = sum(s > t for s in spam) / len(spam)
    need = max(1, -(-97 * len(spam) // 100))  # spam a 97% threshold must catch
    t97 = spam[need - 1]
    flagged = sum(h >= t97 for h in ham)
    return len(ham), len(spam), at, flagged


def main():
    print(f"{'run':<48} {'scanner':<13} " + " ".join(f"{'@' + str(k) + ' ham':>8}" for k in (0, 3, 10, 20))
          + "   ham flagged at 97% of spam")
    for out in sys.argv[1:]:
        for name in SCANNERS:
            path = os.path.join(out, f"{name}.csv")
            if not os.path.exists(path):
                continue
            nham, nspam, at, flagged = ranking(path)
            cells = " ".join(f"{100 * at[k]:7.1f}%" for k in (0, 3, 10, 20))
            print(f"{os.path.relpath(out):<48} {name:<13} {cells}   {flagged}/{nham} ({100 * flagged / nham:.2f}%)")


if __name__ == "__main__":
    sys.exit(main())
