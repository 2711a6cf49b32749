#!/bin/bash
# roamd's configuration: a config file and flags (flags win), -n checks and
# exits, a key file open to others is refused, bad settings are named;
# roam keygen writes 0600 and never overwrites.
# timeout: 30
set -u
B=${ROAM_BUILD:?}
W=$(mktemp -d /var/tmp/roam-config.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B/roam" keygen "$W/key" || fail "keygen"
[ "$(stat -c %a "$W/key")" = 600 ] || fail "key mode $(stat -c %a "$W/key")"
"$B/roam" keygen "$W/key" 2>"$W/e" && fail "keygen overwrote a key"
grep -q "exists" "$W/e" || fail "keygen message: $(cat "$W/e")"

cat >"$W/roamd.conf" <<CONF
# a host
name      cfg-host
listen    127.0.0.1:1
key       $W/key
control   $W/c.sock
tags      gpu,ssd
policy    pod:d=2
max-procs 10
CONF
out=$("$B/roamd" -n -f "$W/roamd.conf") || fail "-n with a good file: $out"
echo "$out" | grep -q "host cfg-host" || fail "-n output: $out"
out=$("$B/roamd" -n -f "$W/roamd.conf" --name other) || fail "-n with a flag"
echo "$out" | grep -q "host other" || fail "a flag must win over the file: $out"
echo "$out" | grep -q "state /var/lib/roam/other)" || fail "default state directory: $out"
"$B/roamd" -n -f "$W/roamd.conf" --state-dir relative/dir 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "state-dir 'relative/dir' must be an absolute path" "$W/e" || fail "relative state dir gave $rc: $(cat "$W/e")"

chmod 640 "$W/key"
"$B/roamd" -n -f "$W/roamd.conf" 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "readable or writable by group or others" "$W/e" || fail "open key gave $rc: $(cat "$W/e")"
chmod 600 "$W/key"
"$B/roamd" -n -f "$W/roamd.conf" --policy 'pod:d=0' 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "policy" "$W/e" || fail "bad policy gave $rc: $(cat "$W/e")"
"$B/roamd" -n -f "$W/roamd.conf" --name 'bad name' 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "host name" "$W/e" || fail "bad name gave $rc: $(cat "$W/e")"
"$B/roamd" -n -f "$W/roamd.conf" --peers 'example.org:7070' 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "not ADDR:PORT" "$W/e" || fail "a peer by name (no resolver) gave $rc: $(cat "$W/e")"
"$B/roamd" -n -f "$W/roamd.conf" --job-mem-max 512M >/dev/null 2>"$W/e" || fail "--job-mem-max 512M: $(cat "$W/e")"
"$B/roamd" -n -f "$W/roamd.conf" --job-mem-max 12x 2>"$W/e"; rc=$?
[ $rc = 2 ] && grep -q "bad value for job-mem-max: '12x'" "$W/e" || fail "--job-mem-max 12x gave $rc: $(cat "$W/e")"
echo "colour blue" >>"$W/roamd.conf"
"$B/roamd" -n -f "$W/roamd.conf" 2>"$W/e"; rc=$?
[ $rc = 2 ] && grep -q "unknown setting 'colour'" "$W/e" || fail "unknown setting gave $rc: $(cat "$W/e")"
"$B/roamd" -n --listen 127.0.0.1:1 --control "$W/c.sock" 2>"$W/e"; rc=$?
[ $rc = 1 ] && grep -q "no cluster key" "$W/e" || fail "no key gave $rc: $(cat "$W/e")"
# The CLI without a daemon: 255 and a message naming the socket.
ROAM_CONTROL=$W/none.sock "$B/roam" ps 2>"$W/e"; rc=$?
[ $rc = 255 ] && grep -q "none.sock" "$W/e" || fail "roam ps without roamd gave $rc: $(cat "$W/e")"
"$B/roam" run 2>/dev/null; rc=$?
[ $rc = 2 ] || fail "roam run without a command gave $rc"
echo "PASS"
