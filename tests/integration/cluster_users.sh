#!/bin/bash
# Users: jobs run as the caller, mapped by name on the executing host (h2
# knows the user under another uid; h3 does not know the user at all and
# refuses); root jobs are refused when roamd is not told to allow them; a
# user sees and signals only their own jobs, and a roam kill typed on any
# host answers with the home's verdict (refused, no such job, not running).
# timeout: 90
# alone: it may make the machine's user of uid 1000, and remove it
. "$(dirname "$0")/lib/cluster.sh"

[ "$(id -u)" = 0 ] || { echo "needs root (runs jobs as other users, bind-mounts /etc/passwd per host)"; exit 77; }
U=$(getent passwd 1000 | cut -d: -f1)
MADE_USER=""
if [ -z "$U" ]; then
	# A fresh machine may have no ordinary user: make one for the test.
	useradd -u 1000 -M -N -s /bin/sh roamtu || { echo "cannot create a user with uid 1000"; exit 1; }
	U=roamtu MADE_USER=roamtu
	trap 'cluster_cleanup; userdel "$MADE_USER" 2>/dev/null' EXIT
fi
OTHER=nobody

# h2: U is uid 4321 there; h3: U does not exist.
sed "s/^$U:x:1000:/$U:x:4321:/" /etc/passwd >"$WORK/passwd.h2"
grep -v "^$U:" /etc/passwd >"$WORK/passwd.h3"
chmod 644 "$WORK"/passwd.*
HOST_PRE[2]="mount --bind $WORK/passwd.h2 /etc/passwd;"
HOST_PRE[3]="mount --bind $WORK/passwd.h3 /etc/passwd;"
cluster_up 3
H2=$(hname 2)

as() { # USER I roam-args...
	local user=$1 i=$2; shift 2
	local sub=$1; shift
	(cd / && runuser -u "$user" -- "$ROAM" "$sub" --control "$WORK/h$i.sock" "$@")
}

# Root is refused (no --allow-root).
run_on 1 run -- true 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "root jobs are refused" "$WORK/e" || fail "root job gave $rc: $(cat "$WORK/e")"

# U runs as U: locally uid 1000, on h2 the uid h2 gives the name U.
[ "$(as "$U" 1 run --on "$(hname 1)" -- id -un)" = "$U" ] || fail "local job not run as $U"
[ "$(as "$U" 1 run --on "$(hname 1)" -- id -u)" = 1000 ] || fail "local uid"
out=$(as "$U" 1 run --on "$H2" -- sh -c 'id -un; id -u')
[ "$(echo $out)" = "$U 4321" ] || fail "on h2, mapped by name: got '$out'"
# h2's user database changes while its roamd runs: roamd caches users, but
# not past a change of /etc/passwd (written in place: it is a bind mount).
sed "s/^$U:x:1000:/$U:x:4322:/" /etc/passwd >"$WORK/passwd.new"
cat "$WORK/passwd.new" >"$WORK/passwd.h2"
[ "$(as "$U" 1 run --on "$H2" -- id -u)" = 4322 ] || fail "h2 still maps $U to its old uid after /etc/passwd changed"
# h3 does not know U.
as "$U" 1 run --on "$(hname 3)" -- true 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "unknown user '$U'" "$WORK/e" || fail "unknown user on h3 gave $rc: $(cat "$WORK/e")"

# Only the owner (or root) sees and signals a job.
id=$(as "$U" 1 run --detach --on "$H2" -- sleep 60) || fail "detach as $U"
as "$U" 1 ps | grep -q "^$id " || fail "$U does not see its job"
as "$OTHER" 1 ps | grep -q "^$id " && fail "$OTHER sees $U's job"
run_on 1 ps | grep -q "^$id .* $U " || fail "root does not see $U's job: $(run_on 1 ps)"
as "$OTHER" 1 kill -KILL "$id" 2>"$WORK/e" && fail "$OTHER could kill $U's job"
grep -q "another user" "$WORK/e" || fail "refusal message: $(cat "$WORK/e")"
# Typed on other hosts (h3, and h2 where the job runs), the answer is the
# home's verdict after its check, not "sent".
for h in 3 2; do
	as "$OTHER" $h kill -KILL "$id" 2>"$WORK/e"; rc=$?
	[ $rc = 255 ] && grep -q "belongs to another user" "$WORK/e" ||
		fail "$OTHER's kill typed on h$h gave $rc: $(cat "$WORK/e")"
done
as "$OTHER" 1 wait "$id" 2>/dev/null && fail "$OTHER could wait for $U's job"
# Unknown ids, across hosts: a job its home does not know, a home nobody knows.
as "$U" 3 kill "$(hname 1).999999" 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "no such job $(hname 1).999999" "$WORK/e" || fail "unknown id from h3 gave $rc: $(cat "$WORK/e")"
run_on 2 kill "nohost.1" 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "no such job nohost.1" "$WORK/e" || fail "unknown home gave $rc: $(cat "$WORK/e")"
sleep 0.5
as "$U" 1 ps | grep -q "^$id .*running" || fail "$U's job did not survive $OTHER's attempts"
# U kills it from h2, as h2 knows U (uid 4321: inside h2's mount namespace).
as_on_h2() { (cd / && nsenter -t "$(roamd_pid 2)" -m -p -- runuser -u "$U" -- "$ROAM" "$@" --control "$WORK/h2.sock"); }
as_on_h2 kill "$id" 2>"$WORK/e" || fail "$U cannot kill its own job from h2: $(cat "$WORK/e")"
as "$U" 1 wait "$id"; rc=$?
[ $rc = 143 ] || fail "$U's killed job: wait gave $rc"
as_on_h2 kill "$id" 2>"$WORK/e"; rc=$?
[ $rc = 255 ] && grep -q "is not running" "$WORK/e" || fail "kill of an ended job from h2 gave $rc: $(cat "$WORK/e")"
echo "PASS"
