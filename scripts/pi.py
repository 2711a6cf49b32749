# Digits of pi with Machin's formula, in rounds of growing precision: the
# demos' program (scripts/demo.sh, scripts/demo-engine.sh).
#   pi.py LAST STEP PAUSE   rounds STEP, 2*STEP, ... LAST digits, PAUSE s apart
import sys, time
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)
last, step, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def arctan_inv(x, one):
    total, term, n, sign = 0, one // x, 1, 1
    while term:
        total += sign * (term // n)
        term //= x * x
        n += 2
        sign = -sign
    return total
for digits in range(step, last + 1, step):
    one = 10 ** (digits + 10)
    pi = 4 * (4 * arctan_inv(5, one) - arctan_inv(239, one))
    s = str(pi)[:digits]
    print(f"{digits:6d} digits, last ten: {s[-10:]}", flush=True)
    if pause:
        time.sleep(pause)
print("done:", sum(int(c) for c in s), file=sys.stderr, flush=True)
