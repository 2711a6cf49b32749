# Sourced by the benchmarks (ckpt_restore.sh, migrate.sh): the helpers they
# share. Needs: BENCH (the script's name, for messages), extglob.
#
#   die MSG / log MSG            to stderr, prefixed with $BENCH (die exits 1)
#   now_us VAR                   the realtime clock in microseconds, into VAR
#   wait_line FILE WHAT SECONDS  the first line of FILE starting with WHAT
#   gone PID [SECONDS]           true once PID is dead (default within 20 s)
#   field NAME LINE              the value of NAME=value in LINE
#   img_bytes DIR                the bytes of the image files under DIR
#   runs_for SIZE                measured runs for SIZE ($RUNS, $RUNS_BIG at 1 GiB)
#   bench_renice SCRIPT ARGS...  runs the benchmark again at nice $BENCH_NICE, once
#   find_criu                    CRIU: $CRIU, or the one bench/criu/build.sh builds
#   out_files NAME               stamp, TSV and MD: $OUT/NAME-<UTC stamp>.tsv and .md

die() { echo "$BENCH: $*" >&2; exit 1; }
log() { echo "$BENCH: $*" >&2; }

# No command substitution: its fork would land inside the stall being
# measured.
now_us() { local _now=${EPOCHREALTIME/./}; printf -v "$1" '%s' "${_now##+(0)}"; }

wait_line() {
	local file=$1 what=$2 limit=$3 line i
	for ((i = 0; i < limit * 200; i++)); do
		line=$(grep -m1 "^$what" "$file" 2>/dev/null) && { echo "$line"; return 0; }
		sleep 0.005
	done
	return 1
}

# A zombie counts as dead. Reads /proc with builtins, so the common case
# costs no fork.
gone() {
	local st i
	for ((i = 0; i < ${2:-20} * 200; i++)); do
		read -r st 2>/dev/null <"/proc/$1/stat" || return 0
		st=${st##*) }
		[[ $st == Z* || $st == X* ]] && return 0
		sleep 0.005
	done
	return 1
}

# NAME=value after a space or a colon; 1 when LINE has none.
field() {
	local v=${2##*[ :]"$1="}
	[ "$v" = "$2" ] && return 1
	echo "${v%% *}"
}

# Logs and roam's stats files are not the image.
img_bytes() {
	find "$1" -type f ! -name '*.log' ! -name 'stats-*' -printf '%s\n' 2>/dev/null |
		awk '{s += $1} END {print s + 0}'
}

runs_for() {
	case $1 in *[Gg]*) echo "$RUNS_BIG" ;; *) echo "$RUNS" ;; esac
}

# The whole run (tools, subjects and floors alike) at nice BENCH_NICE
# (default -10), so that other work on the machine disturbs it less; empty
# leaves it alone. Re-executes SCRIPT once: call it before anything else.
bench_renice() {
	BENCH_NICE=${BENCH_NICE--10}
	if [ -n "$BENCH_NICE" ] && [ -z "${ROAM_BENCH_NICED:-}" ]; then
		ROAM_BENCH_NICED=1 exec nice -n "$BENCH_NICE" "$@"
	fi
}

find_criu() {
	CRIU=${CRIU:-$("$here/criu/build.sh")} || die "no CRIU"
	[ -x "$CRIU" ] || die "CRIU '$CRIU' is not executable"
}

out_files() {
	mkdir -p "$OUT"
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	TSV=$OUT/$1-$stamp.tsv
	MD=$OUT/$1-$stamp.md
}
