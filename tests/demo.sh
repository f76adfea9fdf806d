#!/bin/sh
# make demo: a fresh demo spool, a few dozen jobs for two clients, a few ticks,
# then the status report.  Runs on the virtual clock so it takes seconds.
set -eu
cd "$(dirname "$0")/.."
conf=conf/demo.conf
rm -rf spool/demo
./outreach -c $conf init
./outreach -c $conf enqueue --client acme --campaign q4-fintech tests/data/demo-acme.csv >/dev/null
./outreach -c $conf enqueue tests/data/demo-globex.jsonl >/dev/null
now=$(date -u +%s)
for i in 1 2 3; do
  OUTREACH_NOW=$((now + (i - 1) * 60)) ./outreach -c $conf run
done
./outreach -c $conf status
echo
echo "messages: $(ls spool/demo/outbox | wc -l) files in spool/demo/outbox/, e.g.:"
f=$(ls spool/demo/outbox | head -1)
sed -n '1,12p' "spool/demo/outbox/$f"
