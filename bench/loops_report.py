#!/usr/bin/env python3
"""The table of bench/ckpt_loops.sh: per program and tool, medians and p99
of the checkpoint, the restore, the freeze and the time stopped, with
CRIU/roam ratios of the medians; failed runs counted, never figures.

    loops_report.py TSV --criu VERSION
"""
import argparse
import csv
import statistics
import sys

from report_common import fmt_ms, fmt_ratio, num, p99

METRICS = [("stopped_us", "stopped"), ("ckpt_us", "checkpoint"), ("restore_us", "restore"),
           ("frozen_us", "frozen (tool's own)")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--criu", default="?")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.tsv), delimiter="\t"))
    programs = list(dict.fromkeys(r["program"] for r in rows))
    print(f"Checkpoint + restore of event-loop programs, roam vs CRIU {a.criu} (ms; images on tmpfs)\n")
    print("| program | tool | runs ok / failed | " +
          " | ".join(f"{name} med | {name} p99" for _, name in METRICS) +
          " | image MiB | CRIU/roam stopped | CRIU/roam checkpoint | CRIU/roam restore |")
    print("|---|---|---|" + "---:|" * (2 * len(METRICS) + 4))
    for prog in programs:
        med = {}
        for tool in ("criu", "roam"):
            rs = [r for r in rows if r["program"] == prog and r["tool"] == tool]
            ok = [r for r in rs if r["note"] == "ok"]
            cells = []
            for key, _ in METRICS:
                xs = [v for v in (num(r[key]) for r in ok) if v is not None]
                m = statistics.median(xs) if xs else None
                med[(tool, key)] = m
                cells += [fmt_ms(m), fmt_ms(p99(xs)) if xs else "-"]
            sizes = [v for v in (num(r["image_bytes"]) for r in ok) if v is not None]
            mib = f"{statistics.median(sizes) / (1 << 20):.1f}" if sizes else "-"
            ratios = ["-", "-", "-"]
            if tool == "roam":
                ratios = [fmt_ratio(med[("criu", k)], med[("roam", k)])
                          for k in ("stopped_us", "ckpt_us", "restore_us")]
            name = "CRIU" if tool == "criu" else "roam"
            print(f"| {prog} | {name} | {len(ok)} / {len(rs) - len(ok)} | " + " | ".join(cells) +
                  f" | {mib} | " + " | ".join(ratios) + " |")
        for r in rows:
            if r["program"] == prog and r["note"] != "ok":
                print(f"\n{prog} {r['tool']} run {r['run']}: {r['note']}", file=sys.stderr)


if __name__ == "__main__":
    main()
