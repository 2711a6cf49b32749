#!/usr/bin/python3
"""Turns the raw TSV of bench/ckpt_restore.sh into a markdown table.

    ckpt_report.py RAW.tsv [--criu VERSION] [--roam-missing REASON]

Medians and p99 per tool, size and thread count; ratios roam/CRIU and
(checkpoint + restore)/floor; the two targets of issue 2 checked at the end.
p99 is taken by nearest rank, so with fewer than 100 runs it is the maximum
(the table says so).
"""
import argparse
import collections
import csv
import statistics
import sys

from report_common import fmt_ms, fmt_ratio, num, p99, size_key



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--criu", default="?")
    ap.add_argument("--roam-missing", default=None)
    ap.add_argument("--machine", default=None, help="one line about the machine and its load")
    a = ap.parse_args()

    rows = list(csv.DictReader(open(a.tsv), delimiter="\t"))
    ok = collections.defaultdict(list)  # (tool, size, threads) -> rows
    fails = collections.Counter()
    rfails = collections.Counter()  # checkpoint fine, restore failed
    notes = collections.Counter()
    floor = collections.defaultdict(list)      # size -> floor figures
    floor_cfg = collections.defaultdict(list)  # (size, threads) -> those beside its runs
    floor_rows = collections.defaultdict(list)  # the same rows, with their round
    for r in rows:
        if r["tool"] == "floor":
            floor[r["size"]].append(float(r["ckpt_us"]))
            floor_cfg[(r["size"], r["threads"])].append(float(r["ckpt_us"]))
            floor_rows[(r["size"], r["threads"])].append(r)
            continue
        key = (r["tool"], r["size"], r["threads"])
        if r["note"].startswith("FAIL_restore"):
            rfails[key] += 1
            ok[key].append(r)  # its checkpoint figures stand
            continue
        if r["note"].startswith("FAIL"):
            fails[key] += 1
            continue
        if r["note"] != "ok":
            notes[key] += 1
        ok[key].append(r)

    def stat(key, col):
        xs = [num(r[col]) for r in ok.get(key, [])]
        xs = [x for x in xs if x is not None]
        if not xs:
            return None, None, 0
        return statistics.median(xs), p99(xs), len(xs)

    def stat_sum(key):
        xs = [num(r["ckpt_us"]) + num(r["restore_us"]) for r in ok.get(key, [])
              if num(r["ckpt_us"]) is not None and num(r["restore_us"]) is not None]
        if not xs:
            return None, None, 0
        return statistics.median(xs), p99(xs), len(xs)

    def paired(ka, kb, value):
        """Median over rounds of value(a) / value(b), runs of one round side by
        side (the load on the machine drifts between rounds, less within one)."""
        a = {r["run"]: value(r) for r in ok.get(ka, [])}
        b = {r["run"]: value(r) for r in ok.get(kb, [])}
        xs = [a[k] / b[k] for k in a if k in b and a[k] is not None and b[k]]
        return statistics.median(xs) if xs else None

    def floor_of(size, thr):
        xs = floor_cfg.get((size, thr)) or floor.get(size)
        return statistics.median(xs) if xs else None

    configs = sorted({(k[1], k[2]) for k in list(ok) + list(fails) if "-lr" not in k[0]},
                     key=lambda c: (size_key(c[0]), int(c[1])))
    out = []
    out.append(f"## Checkpoint/restore: roam vs CRIU {a.criu} (images on tmpfs)\n")
    if a.machine:
        out.append(f"{a.machine}\n")
    if a.roam_missing:
        out.append(f"{a.roam_missing}\n")
    out.append("Times in ms (median / p99; p99 is the maximum when n < 100), image in MiB. "
               "frozen: the process is frozen by checkpoint (tool's own figure); frozen (seen): "
               "the same, as the process saw it (its longest gap across a checkpoint with "
               "--leave-running, separate runs); ckpt: the whole "
               "checkpoint command; restore: until the process runs (detached); stall: the "
               "longest time no thread of the process ran (subject's CLOCK_REALTIME); "
               "floor: mmap fresh pages + memcpy of the same memory, run between the tools' runs of "
               "the same configuration; touch after: one write to every page of the restored "
               "process (a restore that defers work, lazily or copy-on-write, pays it here).\n")
    # The summary: medians only, one row per configuration.
    out.append("Summary (medians, ms):\n")
    out.append("| RSS | thr | frozen CRIU | frozen roam | stall CRIU | stall roam | "
               "CRIU/roam stall | ckpt+restore CRIU | ckpt+restore roam | floor | "
               "roam/floor | CRIU/floor |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, thr in configs:
        kc, kr = ("criu", size, thr), ("roam", size, thr)
        fl = floor_of(size, thr)
        fc, fr = stat(kc, "frozen_us")[0], stat(kr, "frozen_us")[0]
        sc, sr = stat(kc, "stall_us")[0], stat(kr, "stall_us")[0]
        cc, cr = stat_sum(kc)[0], stat_sum(kr)[0]
        out.append(f"| {size} | {thr} | {fmt_ms(fc)} | {fmt_ms(fr)} | {fmt_ms(sc)} | "
                   f"{fmt_ms(sr)} | {fmt_ratio(sc, sr)} | {fmt_ms(cc)} | {fmt_ms(cr)} | "
                   f"{fmt_ms(fl)} | {fmt_ratio(cr, fl)} | {fmt_ratio(cc, fl)} |")
    out.append("\nDetails:\n")
    metrics = [("frozen", "frozen_us"), ("frozen (seen)", "lr"), ("ckpt", "ckpt_us"), ("restore", "restore_us"),
               ("stall", "stall_us"), ("ckpt+restore", None), ("touch after", "touch_us")]
    out.append("| RSS | thr | metric | CRIU med | CRIU p99 | roam med | roam p99 | roam/CRIU |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|")
    targets = []
    for size, thr in configs:
        kc, kr = ("criu", size, thr), ("roam", size, thr)
        fl = floor_of(size, thr)
        for name, col in metrics:
            if col == "lr":
                c = stat(("criu-lr", size, thr), "stall_us")
                r = stat(("roam-lr", size, thr), "stall_us")
            else:
                c = stat_sum(kc) if col is None else stat(kc, col)
                r = stat_sum(kr) if col is None else stat(kr, col)
            out.append(f"| {size} | {thr} | {name} | {fmt_ms(c[0])} | {fmt_ms(c[1])} | "
                       f"{fmt_ms(r[0])} | {fmt_ms(r[1])} | {fmt_ratio(r[0], c[0])} |")
        ci = stat(kc, "image_bytes")
        ri = stat(kr, "image_bytes")
        mib = lambda v: "-" if v is None else f"{v / 1048576:.1f}"
        out.append(f"| {size} | {thr} | image MiB | {mib(ci[0])} | {mib(ci[1])} | "
                   f"{mib(ri[0])} | {mib(ri[1])} | {fmt_ratio(ri[0], ci[0])} |")
        cs, rs = stat_sum(kc)[0], stat_sum(kr)[0]
        out.append(f"| {size} | {thr} | (ckpt+restore)/floor | {fmt_ratio(cs, fl)} | | "
                   f"{fmt_ratio(rs, fl)} | | |")
        n = f"n: CRIU {len(ok.get(kc, []))}, roam {len(ok.get(kr, []))}"
        if fails[kc] or fails[kr]:
            n += f"; failed runs: CRIU {fails[kc]}, roam {fails[kr]}"
        if rfails[kc] or rfails[kr]:
            n += f"; failed restores: CRIU {rfails[kc]}, roam {rfails[kr]}"
        lc, lr = ("criu-lr", size, thr), ("roam-lr", size, thr)
        if fails[lc] or fails[lr]:
            n += f"; failed --leave-running runs: CRIU {fails[lc]}, roam {fails[lr]}"
        if notes[kc] or notes[kr]:
            n += f"; runs whose longest gap preceded the checkpoint: CRIU {notes[kc]}, roam {notes[kr]}"
        out.append(f"| {size} | {thr} | {n} | | | | | |")

        cst, rst = stat(kc, "stall_us")[0], stat(kr, "stall_us")[0]
        if size_key(size) <= 64 << 20:
            if rst is None:
                verdict = "n/a (roam not measured)"
            else:
                verdict = ("MET" if cst / rst >= 3 else "NOT MET") + f" ({cst / rst:.1f}x"
                pr = paired(kc, kr, lambda r: num(r["stall_us"]))
                verdict += f"; median of per-round ratios {pr:.1f}x)" if pr else ")"
            targets.append(f"- stall {size} x {thr}: CRIU/roam >= 3: {verdict}")
        else:
            if rs is None:
                verdict = "n/a (roam not measured)"
            else:
                verdict = ("MET" if rs / fl <= 2 else "NOT MET") + f" ({rs / fl:.2f}x"
                fr = {r["run"]: float(r["ckpt_us"]) for r in floor_rows.get((size, thr), [])}
                xs = [(num(r["ckpt_us"]) + num(r["restore_us"])) / fr[r["run"]]
                      for r in ok.get(kr, []) if r["run"] in fr and num(r["restore_us"]) is not None]
                verdict += (f"; median of per-round ratios {statistics.median(xs):.2f}x)"
                            if xs else ")")
            targets.append(f"- ckpt+restore {size} x {thr}: roam/floor <= 2: {verdict}"
                           f" (CRIU: {fmt_ratio(cs, fl)}x)")
    pipe_cfgs = [c for c in configs if ok.get(("roam-pipe",) + c) or fails.get(("roam-pipe",) + c)]
    pipe_targets = []
    if pipe_cfgs:
        out.append("")
        out.append("Streaming, no image file: `roam checkpoint PID -o - | roam restore - --detach` "
                   "(the path migration takes; restore overlaps checkpoint). pipeline: the whole "
                   "pipeline's wall time. ms, median / p99:\n")
        out.append("| RSS | thr | stall pipe | stall pipe p99 | CRIU/pipe stall | pipeline | "
                   "pipeline p99 | pipeline/floor | n |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for size, thr in pipe_cfgs:
            kp, kc = ("roam-pipe", size, thr), ("criu", size, thr)
            sp, cp = stat(kp, "stall_us"), stat(kp, "ckpt_us")
            cst = stat(kc, "stall_us")[0]
            fl = floor_of(size, thr)
            nf = f"{sp[2]}" + (f", {fails[kp]} failed" if fails[kp] else "") + \
                 (f", {rfails[kp]} failed restores" if rfails[kp] else "")
            out.append(f"| {size} | {thr} | {fmt_ms(sp[0])} | {fmt_ms(sp[1])} | "
                       f"{fmt_ratio(cst, sp[0])} | {fmt_ms(cp[0])} | {fmt_ms(cp[1])} | "
                       f"{fmt_ratio(cp[0], fl)} | {nf} |")
            if sp[0] is not None and cst is not None:
                if size_key(size) <= 64 << 20:
                    pipe_targets.append(f"- (streaming) stall {size} x {thr}: CRIU/roam-pipe: "
                                        f"{cst / sp[0]:.1f}x")
                elif cp[0] is not None and fl:
                    pipe_targets.append(f"- (streaming) pipeline {size} x {thr}: roam-pipe/floor: "
                                        f"{cp[0] / fl:.2f}x")
    out.append("")
    out.append("Floor (ms, median / p99): " + ", ".join(
        f"{s}: {fmt_ms(statistics.median(v))} / {fmt_ms(p99(v))}"
        for s, v in sorted(floor.items(), key=lambda kv: size_key(kv[0]))))
    out.append("")
    out.append("Targets (issue 2):")
    out.extend(targets)
    out.extend(pipe_targets)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
