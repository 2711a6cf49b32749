#!/bin/bash
# timeout: 120
# roam-sim's command line: clear errors for bad input (policy specs,
# options, traces), RFC 4180 CSV, repeated --policy, --sweep, seeded
# reproducibility, the trace format, and the plots.
set -u
. "$(dirname "$0")/sim_lib.inc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }

# refuses WHAT EXPECTED-STDERR-WORDS ARGS...: exit 2 and a message.
refuses() {
	local what=$1 words=$2; shift 2
	"$SIM" "$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ $rc = 2 ] && grep -q -- "$words" "$tmp/err"; then
		pass "refuses $what"
	else
		fail "refuses $what: rc=$rc, stderr: $(head -c 300 "$tmp/err")"
	fi
}

refuses "an unknown policy" "unknown policy" --policy rnd --jobs 10
refuses "d out of range" "out of range" --policy pod:d=0 --jobs 10
refuses "a duplicate parameter" "given twice" --policy pod:d=2,d=3 --jobs 10
refuses "a parameter of another policy" "no such parameter" --policy random:d=2 --jobs 10
refuses "load 1" "in (0, 1)" --load 1 --jobs 10
refuses "load abc" "in (0, 1)" --load abc --jobs 10
refuses "zero hosts" "--hosts" --hosts 0 --jobs 10
refuses "a bad work distribution" "--work" --work pareto --jobs 10
refuses "migration without PS" "needs --ps" --migrate --jobs 10
refuses "an unknown option" "unrecognized" --frobnicate
refuses "a stray argument" "unexpected argument" --jobs 10 extra
refuses "fewer jobs than replications" "fewer than" --jobs 3 --reps 5
# The error points at the offending part of the spec.
"$SIM" --policy threshold:t=2,lp=99 2>"$tmp/err"
grep -q '^roam-sim: *\^' "$tmp/err" && [ "$(sed -n 2p "$tmp/err" | tr -cd ' ' | wc -c)" -gt 20 ] &&
	pass "a spec error shows where" || fail "a spec error shows where: $(cat "$tmp/err")"

# CSV: header, CRLF, one row per (policy, load), specs with commas quoted.
"$SIM" --hosts 50 --jobs 20000 --reps 2 --seed 9 --csv --policy "threshold:t=2,lp=3" \
	--policy random --sweep=0.5,0.7 >"$tmp/a.csv" || fail "csv run"
head -n1 "$tmp/a.csv" | grep -q '^policy,hosts,load,mean,p99,ci95,' && pass "csv header" || fail "csv header: $(head -n1 "$tmp/a.csv")"
[ "$(grep -c $'\r$' "$tmp/a.csv")" = 5 ] && pass "csv lines end in CRLF" || fail "csv CRLF"
[ "$(grep -c '^"threshold:t=2,lp=3",50,0.5,' "$tmp/a.csv")" = 1 ] && pass "csv quotes a spec with commas" || fail "csv quoting: $(cat "$tmp/a.csv")"
[ "$(grep -c '^random,50,0.7,' "$tmp/a.csv")" = 1 ] && pass "csv row per policy and load" || fail "csv rows"
# Every row has 16 fields once the quoted one is taken out.
awk -F, 'NR > 1 { sub(/^"[^"]*"/, "x"); if (NF != 16) bad = 1 } END { exit bad }' "$tmp/a.csv" &&
	pass "csv rows have 16 fields" || fail "csv field count"

# Seeded and reproducible; another seed gives other numbers.
"$SIM" --hosts 50 --jobs 20000 --reps 2 --seed 9 --csv --policy "threshold:t=2,lp=3" \
	--policy random --sweep=0.5,0.7 >"$tmp/b.csv"
cmp -s "$tmp/a.csv" "$tmp/b.csv" && pass "same seed, same bytes" || fail "same seed differs"
"$SIM" --hosts 50 --jobs 20000 --reps 2 --seed 10 --csv --policy "threshold:t=2,lp=3" \
	--policy random --sweep=0.5,0.7 >"$tmp/c.csv"
cmp -s "$tmp/a.csv" "$tmp/c.csv" && fail "another seed gives the same numbers" || pass "another seed, other numbers"

# Traces. One host, a process of work 1 every 2 s: each spends exactly 1 s.
{ echo "arrival,origin,work"; for i in $(seq 0 999); do echo "$((2 * i)),0,1"; done; } >"$tmp/t1.csv"
read -r _ _ m p99 _ <<<"$(sim_row --hosts 1 --trace "$tmp/t1.csv" --jobs 1000 --reps 1 --warmup 0)"
awk -v m="$m" -v p="$p99" 'BEGIN { exit !(m == 1 && p > 0.99 && p < 1.01) }' &&
	pass "trace: deterministic spacing gives time 1" || fail "trace mean $m p99 $p99"
# Two processes at once on one host (FIFO): times 1 and 2, mean 1.5.
{ echo "arrival,origin,work,mem"; for i in $(seq 0 499); do echo "$((10 * i)),0,1,5"; echo "$((10 * i)),0,1,5"; done; } >"$tmp/t2.csv"
read -r _ _ m _ <<<"$(sim_row --hosts 1 --trace "$tmp/t2.csv" --jobs 1000 --reps 1 --warmup 0)"
[ "$m" = 1.5 ] && pass "trace with a mem column, FIFO order" || fail "trace 2: mean $m"

bad_trace() { # what expected-line content
	printf '%b' "$3" >"$tmp/bad.csv"
	"$SIM" --hosts 4 --trace "$tmp/bad.csv" --jobs 10 --reps 1 >/dev/null 2>"$tmp/err"
	local rc=$?
	if [ $rc = 2 ] && grep -q "bad.csv:$2:" "$tmp/err"; then pass "trace refuses $1"; else fail "trace refuses $1: rc=$rc $(cat "$tmp/err")"; fi
}
bad_trace "a wrong header" 1 'time,host,work\n0,0,1\n'
bad_trace "arrivals going back" 3 'arrival,origin,work\n5,0,1\n4,0,1\n'
bad_trace "an origin out of range" 2 'arrival,origin,work\n0,4,1\n'
bad_trace "a fractional origin" 2 'arrival,origin,work\n0,1.5,1\n'
bad_trace "zero work" 2 'arrival,origin,work\n0,1,0\n'
bad_trace "a missing field" 3 'arrival,origin,work\n0,1,1\n1,1\n'
bad_trace "an extra field" 2 'arrival,origin,work\n0,1,1,7\n'
bad_trace "a trailing comma" 2 'arrival,origin,work\n0,1,1,\n'
bad_trace "not a number" 2 'arrival,origin,work\n0,x,1\n'
bad_trace "nan" 2 'arrival,origin,work\nnan,1,1\n'
bad_trace "negative memory" 2 'arrival,origin,work,mem\n0,1,1,-3\n'
bad_trace "an empty line" 3 'arrival,origin,work\n0,1,1\n\n'
bad_trace "no rows" 2 'arrival,origin,work\n'
"$SIM" --trace "$tmp/missing.csv" --jobs 10 --reps 1 >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "No such file" "$tmp/err" && pass "trace: a missing file" || fail "missing trace: $(cat "$tmp/err")"

# Plots: a PNG and an SVG.
if "$SIM" --hosts 20 --jobs 20000 --reps 2 --sweep=0.5,0.8 --policy random --policy jsq \
	--plot "$tmp/plot" >/dev/null 2>"$tmp/err"; then
	head -c 8 "$tmp/plot.png" | od -An -tx1 | grep -q '89 50 4e 47' && pass "plot: PNG written" || fail "plot: no PNG"
	grep -q '<svg' "$tmp/plot.svg" && pass "plot: SVG written" || fail "plot: no SVG"
else
	fail "plot: $(cat "$tmp/err")"
fi
finish
