#!/usr/bin/env python3
"""Quantiles of a Prometheus histogram between two scrapes of /metrics.

    histogram.py BEFORE.txt AFTER.txt [METRIC]

METRIC defaults to portcullis_smtp_data_reply_seconds (end of DATA to the reply,
fsync included). Prints one line of JSON: the number of observations between the
scrapes, their mean, and p50/p90/p99/p999 as the upper bound of the bucket that
holds the quantile (the histogram cannot say more). A quantile above the largest
finite bucket is reported as "+Inf".
"""
import json
import math
import re
import sys

LINE = re.compile(r'^(\w+)(?:\{([^}]*)\})?\s+(\S+)')


def parse(path, metric):
    buckets, total, count = {}, 0.0, 0.0
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            if name == metric + "_bucket":
                le = re.search(r'le="([^"]+)"', labels).group(1)
                buckets[float(le)] = value
            elif name == metric + "_sum":
                total = value
            elif name == metric + "_count":
                count = value
    return buckets, total, count


def quantiles(before, after, metric):
    b0, s0, c0 = parse(before, metric)
    b1, s1, c1 = parse(after, metric)
    if not b1:
        raise SystemExit(f"histogram.py: {metric} not found in {after}")
    n = c1 - c0
    out = {"metric": metric, "observations": int(n)}
    if n <= 0:
        return out
    out["mean_ms"] = round((s1 - s0) / n * 1000, 3)
    edges = sorted(b1)
    for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p999")):
        rank = q * n
        for le in edges:
            if b1[le] - b0.get(le, 0.0) >= rank:
                out[key + "_ms_le"] = "+Inf" if math.isinf(le) else round(le * 1000, 3)
                break
    out["buckets_ms"] = {
        ("+Inf" if math.isinf(le) else str(round(le * 1000, 3))): int(b1[le] - b0.get(le, 0.0))
        for le in edges
    }
    return out


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    metric = sys.argv[3] if len(sys.argv) > 3 else "portcullis_smtp_data_reply_seconds"
    print(json.dumps(quantiles(sys.argv[1], sys.argv[2], metric)))
