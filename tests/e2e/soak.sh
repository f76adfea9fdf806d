#!/bin/sh
# tests/e2e/soak.sh — the chaos soak (tests/soak.sh) in short for CI: 40 s of
# ticks of three concurrent runs with SIGKILLs at seeded random moments against
# the `mix` peers, then a drain and the audit (nothing lost, nothing twice).
# `make soak` runs the long one (SOAK_SECONDS, default 300).
SOAK_SECONDS=40 SOAK_SEED=${SOAK_SEED:-1} exec sh "$(dirname "$0")/../soak.sh"
