#!/usr/bin/python3
"""Turns the raw TSV of bench/migrate.sh into a markdown table.

    migrate_report.py RAW.tsv [--criu VERSION] [--roam-missing REASON] [--machine LINE]

Medians and p99 per tool, RSS and dirtying rate; ratios roam/floor and
CRIU/roam, as the checkpoint benchmark reports them; the targets of issue 5
checked at the end. p99 is taken by nearest rank, so with fewer than 100
runs it is the maximum (the table says so).
"""
import argparse
import collections
import csv
import statistics
import sys

from report_common import fmt_ms, fmt_ratio, num, p99, size_key

TOOLS = ("criu", "criu-ps", "roam", "roam-cold")
NAMES = {"criu": "CRIU", "criu-ps": "CRIU page-server", "roam": "roam", "roam-cold": "roam --cold",
         "floor": "floor"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tsv")
    ap.add_argument("--criu", default="?")
    ap.add_argument("--roam-missing", default=None)
    ap.add_argument("--machine", default=None)
    a = ap.parse_args()

    rows = list(csv.DictReader(open(a.tsv), delimiter="\t"))
    ok = collections.defaultdict(list)   # (tool, size, rate) -> rows
    fails = collections.Counter()
    notes = collections.Counter()
    for r in rows:
        key = (r["tool"], r["size"], r["rate"])
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

    def med(key, col):
        return stat(key, col)[0]

    def paired(ka, kb, col):
        """Median over rounds of a / b, the two runs of one round side by side."""
        va = {r["run"]: num(r[col]) for r in ok.get(ka, [])}
        vb = {r["run"]: num(r[col]) for r in ok.get(kb, [])}
        xs = [va[k] / vb[k] for k in va if k in vb and va[k] is not None and vb[k]]
        return statistics.median(xs) if xs else None

    configs = sorted({(k[1], k[2]) for k in list(ok) + list(fails)},
                     key=lambda c: (size_key(c[0]), float(c[1])))
    present = [t for t in TOOLS if any(k[0] == t for k in list(ok) + list(fails))]
    out = []
    out.append(f"## Migration: roam vs CRIU {a.criu} cold migration vs the TCP floor\n")
    if a.machine:
        out.append(f"{a.machine}\n")
    if a.roam_missing:
        out.append(f"**{a.roam_missing}**\n")
    out.append("Times in ms. Two hosts: network namespaces on a bridge (10.78.0.1 -> 10.78.0.2). "
               "total: from the first command to the process running on the destination "
               "(CRIU: dump on h1 + image over one TCP connection + restore -d on h2; roam: "
               "`roam migrate --stats`, whose own total_ms is also shown); downtime (seen): the "
               "subject's longest interval in which none of its threads ran from just before "
               "the first command on (CLOCK_REALTIME, last instruction before the freeze to "
               "the first on the destination; it forgets earlier gaps on SIGUSR1); roam's "
               "downtime: its own downtime_ms; floor: the same number of bytes as the RSS over "
               "one TCP connection between the same namespaces into freshly mapped memory, run "
               "after each round of the tools' runs. Dirtying: one thread of the subject "
               "rewrites random 4 KiB pages at that rate (MB/s, 10^6 bytes).\n")

    out.append("Summary (ms; med = median, p99 = the maximum with these few runs; ratios of "
               "medians; CRIU = dump + copy + restore):\n")
    out.append("| RSS | dirty MB/s | tool | total med | total p99 | downtime (seen) med | "
               "downtime (seen) p99 | downtime (tool's own) | total/floor | CRIU/tool total | "
               "CRIU/tool downtime |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, rate in configs:
        kc, kf = ("criu", size, rate), ("floor", size, rate)
        fl = med(kf, "wall_us")
        tc, dc = med(kc, "wall_us"), med(kc, "stall_us")
        for t in present + ["floor"]:
            k = (t, size, rate)
            tot, dn = stat(k, "wall_us"), stat(k, "stall_us")
            if not tot[2] and not fails[k]:
                continue
            own = med(k, "own_down_us")
            fr = "-" if t == "floor" else fmt_ratio(tot[0], fl)
            ct = "-" if t in ("criu", "floor") else fmt_ratio(tc, tot[0])
            cd = "-" if t in ("criu", "floor") else fmt_ratio(dc, dn[0])
            name = NAMES.get(t, t) + (f" ({fails[k]} failed)" if fails[k] else "")
            out.append(f"| {size} | {rate} | {name} | {fmt_ms(tot[0])} | {fmt_ms(tot[1])} | "
                       f"{fmt_ms(dn[0])} | {fmt_ms(dn[1])} | {fmt_ms(own)} | {fr} | {ct} | {cd} |")
    out.append("\nDetails (median / p99; p99 is the maximum when n < 100):\n")
    cols = [t for t in present] + ["floor"]
    out.append("| RSS | dirty | metric | " + " | ".join(
        f"{NAMES.get(t, t)} med | {NAMES.get(t, t)} p99" for t in cols) + " |")
    out.append("|---|---|---|" + "---:|---:|" * len(cols))
    metrics = [("total", "wall_us", "ms"), ("total (tool's own)", "own_total_us", "ms"),
               ("downtime (seen)", "stall_us", "ms"), ("downtime (tool's own)", "own_down_us", "ms"),
               ("dump", "dump_us", "ms"), ("copy", "copy_us", "ms"), ("restore", "restore_us", "ms"),
               ("MiB sent", "bytes", "MiB"), ("rounds", "rounds", "n")]
    for size, rate in configs:
        for name, col, unit in metrics:
            cells = []
            any_value = False
            for t in cols:
                m, p, n = stat((t, size, rate), col)
                any_value |= n > 0
                if unit == "MiB":
                    f = (lambda v: "-" if v is None else f"{v / 1048576:.1f}")
                elif unit == "n":
                    f = (lambda v: "-" if v is None else f"{v:g}")
                else:
                    f = fmt_ms
                cells += [f(m), f(p)]
            if any_value:
                out.append(f"| {size} | {rate} | {name} | " + " | ".join(cells) + " |")
        n = ", ".join(f"{NAMES.get(t, t)} {len(ok.get((t, size, rate), []))}" for t in cols)
        bad = [f"{NAMES.get(t, t)} {fails[(t, size, rate)]}" for t in cols if fails[(t, size, rate)]]
        if bad:
            n += "; failed runs: " + ", ".join(bad)
        odd = [f"{NAMES.get(t, t)} {notes[(t, size, rate)]}" for t in cols if notes[(t, size, rate)]]
        if odd:
            n += "; runs whose longest gap preceded the migration: " + ", ".join(odd)
        out.append(f"| {size} | {rate} | n: {n} |" + " |" * (2 * len(cols)))

    out.append("")
    out.append("Targets (issue 5):")
    for size, rate in configs:
        kc, kr, kk, kf = [(t, size, rate) for t in ("criu", "roam", "roam-cold", "floor")]
        tr, fl = med(kr, "wall_us"), med(kf, "wall_us")
        if tr is None:
            verdict = "n/a (roam not measured)"
        else:
            pr = paired(kr, kf, "wall_us")
            verdict = ("MET" if tr / fl <= 2 else "NOT MET") + f" ({tr / fl:.2f}x" + \
                (f"; median of per-round ratios {pr:.2f}x)" if pr else ")")
        out.append(f"- total {size} at {rate} MB/s: roam/floor <= 2: {verdict}"
                   f" (CRIU: {fmt_ratio(med(kc, 'wall_us'), fl)}x)")
        if size_key(size) >= 1 << 30 and float(rate) <= 10:
            ds, do = med(kr, "stall_us"), med(kr, "own_down_us")
            if ds is None:
                verdict = "n/a (roam not measured)"
            else:
                verdict = ("MET" if ds < 20000 else "NOT MET") + \
                    f" (seen {fmt_ms(ds)} ms, p99 {fmt_ms(stat(kr, 'stall_us')[1])}; roam's own {fmt_ms(do)} ms)"
            out.append(f"- downtime {size} at {rate} MB/s under 20 ms: {verdict}"
                       f" (CRIU: {fmt_ms(med(kc, 'stall_us'))} ms)")
        tk = med(kk, "wall_us")
        cs = [x for x in (med(kc, "wall_us"), med(("criu-ps", size, rate), "wall_us")) if x]
        tc = min(cs) if cs else None
        if tk is None or tc is None:
            verdict = "n/a (roam --cold not measured)"
        else:
            verdict = ("MET" if tc / tk >= 3 else "NOT MET") + f" ({tc / tk:.2f}x)"
        out.append(f"- cold {size} at {rate} MB/s: CRIU (the faster of its two ways)/roam --cold "
                   f"total >= 3: {verdict}; CRIU/floor is {fmt_ratio(tc, fl)}x")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
