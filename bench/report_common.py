"""What the benchmarks' reports share: sizes as the scripts write them,
numbers from the raw TSV, p99 by nearest rank, and the table's formats."""
import math

SIZE_ORDER = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size_key(s):
    s = s.rstrip("iB")
    return int(s[:-1]) * SIZE_ORDER.get(s[-1].upper(), 1) if s[-1].isalpha() else int(s)


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def p99(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.99 * len(xs)) - 1)]


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000.0
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}" if r >= 10 else f"{r:.2f}"
