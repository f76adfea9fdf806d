#!/bin/sh
# make demo: a fresh demo spool, a few dozen jobs for two clients and a
# three-step sequence for three leads, a few ticks; one lead answers (its
# reply dropped into inbound/, as a mail filter would), the next two days'
# ticks send the other leads' follow-ups and none to it; then the status
# report and the leads.  Runs on the virtual clock so it takes seconds.
set -eu
cd "$(dirname "$0")/.."
conf=conf/demo.conf
rm -rf spool/demo
./outreach -c $conf init
./outreach -c $conf enqueue --client acme --campaign q4-fintech tests/data/demo-acme.csv >/dev/null
./outreach -c $conf enqueue tests/data/demo-globex.jsonl >/dev/null
./outreach -c $conf enqueue tests/data/demo-sequence.jsonl >/dev/null
now=$(date -u +%s)
for i in 1 2 3; do
  OUTREACH_NOW=$((now + (i - 1) * 60)) ./outreach -c $conf run
done
# lead1 answers step 1: its reply, threaded to the Message-ID it got
mid=$(./outreach -c $conf jobs --to lead1@example.net --state sent --json | sed -n 's/.*"message_id":"\([^"]*\)".*/\1/p')
printf 'Message-ID: <demo-reply-1@example.net>\r\nFrom: Lena <lead1@example.net>\r\nTo: team@agency-mail.example\r\nIn-Reply-To: %s\r\nSubject: Re: A question about Northwind\r\n\r\nThanks, not this quarter.\r\n' \
  "$mid" >spool/demo/inbound/tmp/reply-1
mv spool/demo/inbound/tmp/reply-1 spool/demo/inbound/new/reply-1
for d in 1 2; do
  OUTREACH_NOW=$((now + d * 86400 + d * 600)) ./outreach -c $conf run
done
./outreach -c $conf status
echo
./outreach -c $conf leads --campaign nurture
echo
echo "messages: $(ls spool/demo/outbox | wc -l) files in spool/demo/outbox/, e.g.:"
f=$(ls spool/demo/outbox | head -1)
sed -n '1,12p' "spool/demo/outbox/$f"
