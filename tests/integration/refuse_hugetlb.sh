#!/bin/bash
# A process with anonymous hugetlbfs memory (MAP_HUGETLB), which restore
# cannot recreate where no huge page is reserved. maps names it
# /anon_hugepage, smaps flags it "ht": the refusal comes before the freeze.
# The test reserves one more huge page for the time of the test.
# timeout: 60
# alone: it changes the machine's huge page pool, and puts it back
. "$(dirname "$0")/lib.sh"
need_root
pool=/proc/sys/vm/nr_hugepages
old=$(cat $pool)
trap 'echo "$old" >$pool; cleanup' EXIT
echo $((old + 1)) >$pool
[ "$(cat $pool)" -gt "$old" ] || skip "the kernel could not reserve a huge page ($pool stays $old)"
EXPECT=('hugetlbfs' '@ADDR@')
refuse_test hugetlb
