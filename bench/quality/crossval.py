#!/usr/bin/env python3
"""Cross-validation of the whole scanner on the training half of the corpus.

    bench/quality/crossval.py CORPUS/train [--folds 10] [--split random|sender|time]
        [--bin PATH] [--out DIR] [--jobs 2]

For each fold a fresh data folder is trained with `portcullis train` on the other
folds, and the fold is judged with `portcullis scan --format jsonl`: the real
binary and every check (headers, links, attachments, rules, the classifier's
bands), with the weights of bench/quality/portcullis.toml's defaults. Only
train/ is read: this is how weights and thresholds are chosen without looking at
eval/.

Splits:
  random  messages dealt to folds at random (seeded): the optimistic figure, a
          sender's other messages are usually in the training folds;
  sender  every message of one sender (List-Id when there is one, else the From
          domain) in the same fold: judged as mail from senders never learned,
          closer to what a newer corpus brings;
  time    one split: the last third of each class by Date is judged by a model
          of the first two thirds.

Writes DIR/cv.jsonl (one verdict per message, with its class and fold) and
prints how many ham are flagged (any action but deliver) and spam caught, and
which symbols the flagged ham carried. bench/quality/weights.py reads cv.jsonl.
"""

import argparse
import email.parser
import email.policy
import email.utils
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


def headers(path):
    """The message's header fields, parsed leniently (the body is not read)."""
    with open(path, "rb") as f:
        raw = f.read(65536)
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[-1]
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def sender_key(h):
    list_id = h.get("List-Id") or h.get("X-Mailing-List") or h.get("List-Post")
    if list_id:
        m = re.search(r"<([^>]+)>", str(list_id))
        return "list:" + (m.group(1) if m else str(list_id)).strip().lower()
    _, addr = email.utils.parseaddr(str(h.get("From", "")))
    return "from:" + addr.rpartition("@")[2].lower()


def date_of(h, fallback):
    try:
        d = email.utils.parsedate_to_datetime(str(h.get("Date", "")))
        return d.timestamp()
    except Exception:
        return fallback


def assign_folds(samples, folds, split, seed):
    rng = random.Random(seed)
    if split == "random":
        order = list(range(len(samples)))
        rng.shuffle(order)
        for n, i in enumerate(order):
            samples[i]["fold"] = n % folds
    elif split == "sender":
        groups = sorted({s["group"] for s in samples})
        rng.shuffle(groups)
        # Largest groups first, each to the fold with the fewest messages so far.
        size = Counter(s["group"] for s in samples)
        groups.sort(key=lambda g: -size[g])
        load = [0] * folds
        fold_of = {}
        for g in groups:
            f = load.index(min(load))
            fold_of[g] = f
            load[f] += size[g]
        for s in samples:
            s["fold"] = fold_of[s["group"]]
    elif split == "time":
        for cls in ("ham", "spam"):
            mine = sorted((s for s in samples if s["class"] == cls), key=lambda s: s["date"])
            cut = len(mine) * 2 // 3
            for n, s in enumerate(mine):
                s["fold"] = 0 if n >= cut else -1  # -1: always learned
    return samples


def run_fold(args, fold, samples, work):
    d = os.path.join(work, f"fold{fold}")
    for cls in ("ham", "spam"):
        os.makedirs(os.path.join(d, "train", cls))
    for s in samples:
        if s["fold"] != fold:
            os.symlink(s["path"], os.path.join(d, "train", s["class"], os.path.basename(s["path"])))
    config = os.path.join(d, "portcullis.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nhostname = "gw.bench.test"\ndata_dir = "{d}/data"\n')
        if args.config:
            with open(args.config) as extra:
                f.write(extra.read())
    subprocess.run([args.bin, "--config", config, "train",
                    "--spam", os.path.join(d, "train", "spam"),
                    "--ham", os.path.join(d, "train", "ham")],
                   check=True, stdout=subprocess.DEVNULL)
    judged = [s for s in samples if s["fold"] == fold]
    out = subprocess.run([args.bin, "--config", config, "scan", "--format", "jsonl"]
                         + [s["path"] for s in judged],
                         check=True, capture_output=True, text=True).stdout
    by_path = {s["path"]: s for s in judged}
    rows = []
    for line in out.splitlines():
        v = json.loads(line)
        s = by_path[v["path"]]
        v["class"], v["fold"], v["group"] = s["class"], fold, s["group"]
        rows.append(v)
    shutil.rmtree(d)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("train")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--split", choices=["random", "sender", "time"], default="sender")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bin", default=os.environ.get("PORTCULLIS_BIN", os.path.expanduser(
        "~/.cache/portcullis-target/release/portcullis")))
    p.add_argument("--config", help="TOML appended to each fold's configuration (e.g. [scan.weights])")
    p.add_argument("--out", default=".")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()

    samples = []
    for cls in ("ham", "spam"):
        folder = os.path.join(args.train, cls)
        for n, name in enumerate(sorted(os.listdir(folder))):
            path = os.path.abspath(os.path.join(folder, name))
            h = headers(path)
            samples.append({"path": path, "class": cls, "group": sender_key(h),
                            "date": date_of(h, n)})
    assign_folds(samples, args.folds, args.split, args.seed)
    folds = [0] if args.split == "time" else list(range(args.folds))

    work = tempfile.mkdtemp(prefix="portcullis-cv.")
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda f: run_fold(args, f, samples, work), folds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [r for fold in results for r in fold]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cv.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")

    ham = [r for r in rows if r["class"] == "ham"]
    spam = [r for r in rows if r["class"] == "spam"]
    flagged = [r for r in ham if r["action"] != "deliver"]
    caught = [r for r in spam if r["action"] != "deliver"]
    print(f"split {args.split}, {len(folds)} fold(s): ham flagged {len(flagged)}/{len(ham)} "
          f"({100 * len(flagged) / max(1, len(ham)):.2f}%), spam caught {len(caught)}/{len(spam)} "
          f"({100 * len(caught) / max(1, len(spam)):.1f}%)")
    for r in sorted(flagged, key=lambda r: -r["score"]):
        syms = " ".join(f"{s['name']}={s['score']:g}" for s in r["symbols"])
        print(f"  ham {r['score']:6.1f} {os.path.basename(r['path'])}: {syms}")
    missed = Counter(s["name"] for r in spam if r["action"] == "deliver" for s in r["symbols"])
    print("symbols of the missed spam:", ", ".join(f"{k} {v}" for k, v in missed.most_common(15)))


if __name__ == "__main__":
    sys.exit(main())
