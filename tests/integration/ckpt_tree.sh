#!/bin/bash
# Checkpoint/restore of the tree subject (tests/subjects/tree.c): a process
# and its children and grandchild, a pipe between two siblings, a pipe from
# the root to a child, one log file description written by three processes,
# a process group a child leads and a sibling joined, a child's own session.
# timeout: 60
. "$(dirname "$0")/lib.sh"
ckpt_test tree
