# Sourced by both demos (scripts/demo.sh, scripts/demo-engine.sh), from the
# repository's top: closes inherited descriptors, installs what is missing,
# builds roam.
#
# Descriptors inherited from whatever started us (an IDE's pipe, a CI
# runner's) would reach the programs the demos run, and a pipe to outside a
# process is something checkpoint and migration rightly refuse: close them.
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
done
scripts/deps.sh
echo "== building roam"
make -s -j"$(nproc)" >/dev/null
