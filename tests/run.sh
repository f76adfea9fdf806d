#!/bin/sh
# The test runner: the C unit tests, then every end-to-end script in
# tests/e2e/.  Each script prints "ok - NAME" / "not ok - NAME" lines; the
# runner counts them and ends with one line "N passed, N failed".
# SAN=1 runs the unit tests and only the e2e scripts marked "# san: yes".
cd "$(dirname "$0")/.." || exit 1
: "${OUTREACH_BIN:=$PWD/outreach}" "${OUTREACH_UNIT:=$PWD/tests/unit}"
export OUTREACH_BIN
pass=0 fail=0
log=$(mktemp) failed=$(mktemp); trap 'rm -f "$log" "$failed"' EXIT

"$OUTREACH_UNIT" >"$log" 2>&1
cat "$log"
p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log")
if ! grep -q 'passed, .* failed' "$log"; then f=$((f + 1)); echo "not ok - unit tests did not finish" | tee -a "$log"; fi
grep '^not ok - ' "$log" | sed 's|^|[unit] |' >>"$failed"
pass=$((pass + p)) fail=$((fail + f))

for t in tests/e2e/*.sh; do
  [ "${SAN:-}" = 1 ] && ! grep -q '^# san: yes' "$t" && continue
  start=$(date +%s)
  timeout 600 sh "$t" >"$log" 2>&1
  rc=$?
  sed "s|^|[$(basename "$t" .sh)] |" "$log" | grep -E '^\[[^]]*\] (ok|not ok|#)' || true
  p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log")
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "not ok - $(basename "$t") exited $rc"; tail -20 "$log"
    echo "not ok - $(basename "$t") exited $rc" >>"$log"
  fi
  grep '^not ok - ' "$log" | sed "s|^|[$(basename "$t" .sh)] |" >>"$failed"
  if [ "$f" -gt 0 ]; then
    grep -vE '^(ok|not ok) - ' "$log" | tail -30 | sed 's/^/    /'
    grep -vE '^(ok|not ok) - ' "$log" | tail -12 | sed 's/^/    /' >>"$failed"
  fi
  echo "# $(basename "$t"): $p passed, $f failed ($(($(date +%s) - start)) s)"
  pass=$((pass + p)) fail=$((fail + f))
done
# CI shows only the tail of this output: repeat the failures just above the count
if [ -s "$failed" ]; then echo "# failures:"; cat "$failed"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
