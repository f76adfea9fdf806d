#!/bin/sh
# tests/e2e/crashwalk.sh — the crash walk (tests/crashwalk.sh) in its CI form:
# the four named fault points at N = 1 and 2 plus 12 durable steps sampled with
# CRASHWALK_SEED (default 1).  `make crashwalk` walks every step.
CRASHWALK= exec sh "$(dirname "$0")/../crashwalk.sh"
