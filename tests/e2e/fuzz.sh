#!/bin/sh
# tests/e2e/fuzz.sh — the libFuzzer harnesses of tests/fuzz/ as a smoke test: each
# tests/fuzz/fuzz-NAME.c is built with clang (make), replays every file of
# tests/fuzz/corpus/NAME/ once (the seeds and the regress-* reproducers of bugs found
# before: tests/fuzz/corpus/README), then fuzzes for FUZZ_SMOKE_SECONDS (default 8) on a
# temporary copy of the seeds.  Any crash, sanitizer report or leak fails the test.
# The runs take about 6 x (FUZZ_SMOKE_SECONDS + 1) s; a fresh build takes about a minute
# per harness on top (ASan instrumenting the compiled-in disposable-domain list), run
# in parallel on every core.  `make fuzz` is the long run (FUZZ_SECONDS, default 60).
# The short run is seeded (FUZZ_SMOKE_SEED, default 1) so that CI explores the same
# paths each time and a red run can be replayed; `make fuzz` draws a fresh seed and is
# where new inputs are found (a find becomes a regress-* file here).
# san: no
. "$(dirname "$0")/../lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${FUZZ_SMOKE_SECONDS:-8}
SEED=${FUZZ_SMOKE_SEED:-1}
cd "$ROOT" || exit 1

if ! command -v clang >/dev/null 2>&1; then
  ok "fuzz: clang is not installed # SKIP"
  finish
fi

names=
for f in tests/fuzz/fuzz-*.c; do
  [ -f "$f" ] || continue
  n=${f#tests/fuzz/fuzz-}; names="$names ${n%.c}"
done
if [ -z "$names" ]; then
  notok "fuzz: no harness in tests/fuzz/"
  finish
fi

targets=
for n in $names; do targets="$targets tests/fuzz/fuzz-$n"; done
jobs=$(nproc 2>/dev/null || echo 2)
# shellcheck disable=SC2086 # word splitting of the target list is intended
if make -s -j"$jobs" $targets >"$T/build.log" 2>&1; then
  ok "fuzz: built$targets"
else
  notok "fuzz: build" "$(grep -m3 -E 'error|Error' "$T/build.log")"
  finish
fi

# crash_detail LOG: the first check or sanitizer line and the input (base64, first 1 KiB)
crash_detail() {
  art=$(sed -n 's/.*Test unit written to //p' "$1" | head -1)
  printf '%s; input (base64): %s' "$(grep -m1 -E 'check failed|ERROR: |SUMMARY: ' "$1")" \
    "$( [ -f "$art" ] && head -c 1024 "$art" | base64 | tr -d '\n')"
}

for n in $names; do
  bin=$ROOT/tests/fuzz/fuzz-$n
  corpus=$ROOT/tests/fuzz/corpus/$n
  mkdir -p "$T/$n/seeds" "$T/$n/cwd"

  # 1. regression: every corpus file once (one process; one per file only on failure)
  files=$(find "$corpus" -maxdepth 1 -type f 2>/dev/null | sort)
  nfiles=$(printf '%s\n' "$files" | grep -c .)
  if [ "$nfiles" -eq 0 ]; then
    notok "fuzz $n: empty seed corpus $corpus"
  else
    # shellcheck disable=SC2086 # corpus file names have no spaces
    if (cd "$T/$n/cwd" && "$bin" -timeout=10 $files) >"$T/$n/replay.log" 2>&1; then
      ok "fuzz $n: $nfiles corpus files replayed"
    else
      for f in $files; do
        if ! (cd "$T/$n/cwd" && "$bin" -timeout=10 "$f") >"$T/$n/one.log" 2>&1; then
          notok "fuzz $n: replay of ${f#"$ROOT"/} crashed" "$(grep -m1 -E 'check failed|ERROR: |SUMMARY: ' "$T/$n/one.log")"
        fi
      done
    fi
  fi

  # 2. a short fuzzing run on a copy of the seeds (regress-* files are replayed above)
  for f in $files; do
    case ${f##*/} in regress-*) ;; *) cp "$f" "$T/$n/seeds/" ;; esac
  done
  if (cd "$T/$n/cwd" && "$bin" -seed="$SEED" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$T/$n/" "$T/$n/seeds") >"$T/$n/fuzz.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/$n/fuzz.log" | head -1)
    ok "fuzz $n: ${execs:-?} execs in $SECS s (seed $SEED)"
  else
    notok "fuzz $n: crashed while fuzzing" "$(crash_detail "$T/$n/fuzz.log")"
  fi
done
finish
