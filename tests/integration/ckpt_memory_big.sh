#!/bin/bash
# Checkpoint/restore of the memory subject with an extra 256 MiB area whose
# every page is present and distinct (big=256): the large-image paths (many
# page records, compression of incompressible data) must bring back every
# byte.  See tests/subjects/memory.c.
# timeout: 90
. "$(dirname "$0")/lib.sh"
CYCLE_GAP=0.5
ckpt_test memory big=256
