#!/bin/sh
# tests/e2e/resend.sh — with in_doubt = "resend", the copy resent of a job in
# doubt carries the Message-ID of its first intent, so a receiver that got
# both can tell they are one message: the process is killed after the
# provider took the message and before its outcome was recorded
# (OUTREACH_FAULT=after-send), the next run resends it (the file provider
# writes <id>.2.eml beside <id>.eml), and both copies are compared.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup "in_doubt = \"resend\";
$default_senders"
mid() { sed -n 's/^Message-ID: //p' "$1" | tr -d '\r'; }

id=$(job ann@example.com | or enqueue -)
OUTREACH_FAULT=after-send or run 2>"$T/run1.err"
check "the first run was killed after the send" test -f "$T/outbox/$id.eml"
intent=$(q "SELECT message_id FROM jobs WHERE id = '$id'")
eq "the ledger holds the intent's Message-ID" "$(mid "$T/outbox/$id.eml")" "$intent"
OUTREACH_NOW=$((NOW + 60)) or run 2>"$T/run2.err"
eq "the next run resent it (in_doubt = resend)" "$(q "SELECT state FROM jobs WHERE id = '$id'")" sent
check "the resent copy is <id>.2.eml" test -f "$T/outbox/$id.2.eml"
first=$(mid "$T/outbox/$id.eml") second=$(mid "$T/outbox/$id.2.eml")
echo "# first $first, resent $second"
eq "the resent copy has the first copy's Message-ID" "$second" "$first"
eq "the ledger keeps that Message-ID" "$(q "SELECT message_id FROM jobs WHERE id = '$id'")" "$first"
# a job never sent before gets a Message-ID of its own
id2=$(job bob@example.com | or enqueue -)
OUTREACH_NOW=$((NOW + 120)) or run 2>"$T/run3.err"
other=$(mid "$T/outbox/$id2.eml")
check "another job has another Message-ID ($other)" test -n "$other" -a "$other" != "$first"
finish
