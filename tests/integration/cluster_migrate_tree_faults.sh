#!/bin/bash
# Never twice, never lost, for a process tree: the faults of
# cluster_migrate_faults.sh that strike the destination, the commit and the
# source (the stream faults wait for a MiB, more than the tree's image), with
# the tree subject (seven processes: pipes between them, a shared log,
# groups and a session of their own) as the job. After each, exactly one
# copy of the whole tree runs, on the host the protocol says, and it passes
# its checks at the end, its status reaching the home.
# timeout: 300
FAULT_SUBJECT=tree FAULT_PROCS=7 \
	ONLY="exit-data exit-built exit-commit lose-committed exit-before-commit exit-doubt" \
	exec bash "$(dirname "$0")/cluster_migrate_faults.sh"
