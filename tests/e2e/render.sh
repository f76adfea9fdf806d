#!/bin/sh
# tests/e2e/render.sh — `render` prints what would be sent, byte for byte but
# the Date and Message-ID lines: the one-click List-Unsubscribe headers of a
# spool with unsubscribe configured, the multipart boundary, a reply's
# In-Reply-To/References and "Re:" subject; compared with what the file
# provider wrote for the same job through the same sender.
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796029200            # 2026-11-30T09:00:00Z, a Monday
export OUTREACH_NOW=$NOW
setup 'unsubscribe = { url = "https://u.example/unsub"; mailto = "unsub@s1.example"; };
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s1"; from = "One <one@s1.example>"; provider = "dry"; daily_limit = 1000; } );'
# strip: the message without its Date and Message-ID lines (CRLF kept)
strip() { grep -av -e '^Date: ' -e '^Message-ID: ' "$1"; }

# compare NAME ID: render, then send, then compare bytes
compare() {
  or render "$2" >"$T/$2.render" 2>"$T/$2.render.err"
  check "$1: render exits 0" test $? -eq 0
  OUTREACH_NOW=$((NOW + ${3:-0})) or run 2>>"$T/run.err"
  eq "$1: sent" "$(q "SELECT state FROM jobs WHERE id = '$2'")" sent
  strip "$T/$2.render" >"$T/$2.render.s"
  strip "$T/outbox/$2.eml" >"$T/$2.sent.s"
  if cmp -s "$T/$2.render.s" "$T/$2.sent.s"; then ok "$1: render equals the sent message but Date and Message-ID"
  else notok "$1: render equals the sent message but Date and Message-ID" \
    "$(diff "$T/$2.render.s" "$T/$2.sent.s" | head -6 | tr '\r\n' '  ')"; fi
  eq "$1: render has the Date and Message-ID lines too" \
    "$(grep -ac -e '^Date: ' -e '^Message-ID: ' "$T/$2.render")" 2
}

a=$(printf '{"client":"acme","campaign":"r","id":"first","to":"Иван <Ivan.P@Example.com>","subject":"Привет, {{n}}!","text":"Текст {{n}}","html":"<p>{{n}} &amp; co</p>","vars":{"n":"Иван"},"headers":{"X-Ref":"42"}}\n' | or enqueue -)
or run --max 0 >/dev/null 2>&1    # ingest only: render reads it from defer/
compare "multipart job with unsubscribe" "$a"
check "render carries List-Unsubscribe" grep -aq '^List-Unsubscribe: <https://u.example/unsub?t=' "$T/$a.render"
check "render carries List-Unsubscribe-Post" grep -aq '^List-Unsubscribe-Post: List-Unsubscribe=One-Click' "$T/$a.render"

b=$(printf '{"client":"acme","campaign":"r","thread":"first","to":"ivan.p@example.com","subject":"","text":"Follow-up"}\n' | or enqueue -)
OUTREACH_NOW=$((NOW + 60)) or run --max 0 >/dev/null 2>&1
compare "a reply in a thread" "$b" 60
check "the reply's render has In-Reply-To the first message as sent" \
  grep -aq "^In-Reply-To: $(sed -n 's/^Message-ID: //p' "$T/outbox/$a.eml" | tr -d '\r')" "$T/$b.render"
finish
