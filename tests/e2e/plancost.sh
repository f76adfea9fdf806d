#!/bin/sh
# tests/e2e/plancost.sh — plan's money figures (README, "plan"), on the virtual clock,
# against a hand computation written below.
#
# Two accounts with different price models, local providers named like them (the
# provider type does not matter for pricing), and one account without a price:
#   ses    price = { per_1000 = 0.10; }                                  (SES-like)
#          an exec provider: it hangs past its timeout for two recipients, whose jobs
#          are held (in doubt: they count as sends, at the time they were held)
#   plan   price = { monthly = 15; included = 50; per_1000_over = 0.9; }  (a plan), file
#   spare  no price: counts 0, named in the note
#   costs = { vps_monthly = 12; }
# Sender sa (ses) serves only client acme, sb (plan) only globex.  retention_days = 60,
# so the ledger still holds the sends from 31 days ago (with the default 30 it would
# have removed them).
#
# now = NOW = Tuesday 2026-12-01 12:00 UTC (the plan runs a minute later).
# Sent (runs at earlier virtual dates):
#   NOW - 31 d  acme 100                   -> outside the last 30 days
#   NOW - 29 d  acme 800, globex 300
#   NOW -  1 d  acme 100 (2 of them held), globex  50
#   last 30 days: acme 900 (ses), globex 350 (plan); 1250 in all
# Pending at NOW (ingested with the senders paused), globex capped at 50 a day:
#   acme    200 jobs due now, 100 of them with a follow-up "after 2d"
#           + 20 with not_before NOW + 35 d  -> forecast beyond the 30 days
#   globex 1600 jobs due now: 50 a day on days 0..30 (day 30 starts at midnight,
#           12 h before now + 30 d) = 31 * 50 = 1550; the other 50 fall later
#   next 30 days: acme 200 + 100 = 300 (ses), globex 1550 (plan); 1850 in all
#
# By hand, the last 30 days:
#   ses    0.10 * 900 / 1000                         =  0.09
#   plan   15 + 0.9 * (350 - 50) / 1000 = 15 + 0.27  = 15.27
#   spare  0;  fixed 12
#   TOTAL  0.09 + 15.27 + 12                         = 27.36
#   acme   0.09 (all of ses) + 12 * 900 / 1250 = 0.09 + 8.64   =  8.73
#   globex 15.27 (all of plan) + 12 * 350 / 1250 = 15.27 + 3.36 = 18.63
# the next 30 days:
#   ses    0.10 * 300 / 1000                         =  0.03
#   plan   15 + 0.9 * (1550 - 50) / 1000 = 15 + 1.35 = 16.35
#   TOTAL  0.03 + 16.35 + 12                         = 28.38
#   acme   0.03 + 12 * 300 / 1850 = 0.03 + 1.9459... = 1.9759... -> 1.98
#   globex 16.35 + 12 * 1550 / 1850 = 16.35 + 10.0540... = 26.4040... -> 26.40
# Without any price (a second spool; costs given all the same): the counts, and no money
# figure at all (JSON null, '-' in the text).
# san: yes
. "$(dirname "$0")/../lib.sh"

NOW=1796126400   # Tuesday 2026-12-01T12:00:00Z
DAY=86400
at() { _t=$1; shift; OUTREACH_NOW=$_t "$OR" -c "$T/conf" "$@"; }
writeconf() {    # writeconf GLOBEX_DAILY_LIMIT (0: no cap)
  cat >"$T/conf" <<EOC
spool = "spool";
report_dir = "reports";
timezone = "UTC";
retention_days = 60;
run = { max_jobs = 100000; deadline = 3600; };
costs = { vps_monthly = 12; };
providers = (
  { name = "ses"; type = "exec"; argv = ["/bin/sh", "$T/ses.sh"]; timeout = 1; price = { per_1000 = 0.10; }; },
  { name = "plan"; type = "file"; dir = "out-plan"; price = { monthly = 15; included = 50; per_1000_over = 0.9; }; },
  { name = "spare"; type = "file"; dir = "out-spare"; }
);
senders = (
  { name = "sa"; from = "A <a@a.example>"; provider = "ses"; daily_limit = 100000; clients = ["acme"];
    replies = "none"; },
  { name = "sb"; from = "B <b@b.example>"; provider = "plan"; daily_limit = 100000; clients = ["globex"];
    replies = "none"; }
);
clients = ( { name = "globex"; daily_limit = $1; } );
EOC
}
jobs() { campaign_jobs "$@"; }   # lib.sh
sendat() {       # sendat TIME FILE: enqueued and sent at virtual TIME
  at "$1" enqueue "$2" >/dev/null && at $(($1 + 1)) run >/dev/null 2>"$T/run.err" ||
    notok "enqueue and run at $1" "$(head -3 "$T/run.err")"
}

# the exec account: a provider id on stdout, but past its timeout for hang*@ recipients
cat >"$T/ses.sh" <<'EOS'
m=$(cat)
case "$m" in *"To: <hang"*) exec sleep 5 ;; esac
echo "ses-$$"
EOS
writeconf 0
"$OR" -c "$T/conf" init >/dev/null || { notok "init"; finish; }
mkdir -p "$T/out-plan" "$T/out-spare"

# ---- check-config: the price is shown, a negative one refused
at $NOW check-config >"$T/cc.out" 2>&1
check "check-config: the ses line shows its price" grep -q '^provider ses: .*, price 0.1 per 1000$' "$T/cc.out"
check "check-config: the plan line shows its price" \
  grep -q '^provider plan: .*, price 15 monthly (per 30 days) + 0.9 per 1000 past 50 included$' "$T/cc.out"
check "check-config: no price on spare's line" sh -c "grep '^provider spare: ' '$T/cc.out' | grep -vq price"
check "check-config: the fixed costs line" grep -q '^costs: vps_monthly 12.00, other_monthly 0.00 per 30 days; plan shows money$' "$T/cc.out"
for bad in 'price = { per_1000 = -0.1; }' 'price = { monthly = -1; }' 'price = { included = -5; }' \
           'price = { per_1000_over = -0.9; }' 'price = { per_1001 = 1; }' 'price = 3'; do
  sed "s/{ name = \"spare\"; type = \"file\"; dir = \"out-spare\"; }/{ name = \"spare\"; type = \"file\"; dir = \"out-spare\"; $bad; }/" \
    "$T/conf" >"$T/bad.conf"
  "$OR" -c "$T/bad.conf" check-config >"$T/bad.out" 2>"$T/bad.err"; rc=$?
  eq "check-config refuses $bad (exit 78, one line naming the line)" \
    "$rc $(wc -l <"$T/bad.err") $(grep -c "^outreach: $T/bad.conf:[0-9]*: " "$T/bad.err")" "78 1 1"
done
sed 's/vps_monthly = 12/vps_monthly = -12/' "$T/conf" >"$T/bad.conf"
"$OR" -c "$T/bad.conf" check-config >/dev/null 2>"$T/bad.err"; rc=$?
eq "check-config refuses costs.vps_monthly = -12" "$rc $(grep -c "'vps_monthly' = -12 is out of range" "$T/bad.err")" "78 1"

# ---- the sends of the past, at their virtual dates
jobs acme old 100 >"$T/old.jsonl";      sendat $((NOW - 31 * DAY)) "$T/old.jsonl"
{ jobs acme m1 800; jobs globex m1 300; } >"$T/m1.jsonl";   sendat $((NOW - 29 * DAY)) "$T/m1.jsonl"
{ jobs acme m2 98; jobs globex m2 50
  job hang1@example.org acme; job hang2@example.org acme; } >"$T/m2.jsonl";   sendat $((NOW - DAY)) "$T/m2.jsonl"
eq "the ledger holds every send, the old ones too (retention_days = 60), two of them held" \
  "$(q "SELECT client || ':' || account || ':' || state || ':' || count(*) FROM jobs WHERE state IN ('sent', 'held')
        GROUP BY client, account, state")" \
  "acme:ses:held:2
acme:ses:sent:998
globex:plan:sent:350"
eq "the held ones have no sent_at" "$(q "SELECT count(*) FROM jobs WHERE state = 'held' AND sent_at IS NULL")" 2
eq "100 of them were sent more than 30 days before now" \
  "$(q "SELECT count(*) FROM jobs WHERE state = 'sent' AND sent_at < $NOW - 30 * $DAY")" 100

# ---- the pending jobs: ingested now with the senders paused, globex capped at 50 a day
writeconf 50
for s in sa sb; do at $NOW pause --sender $s --reason "ingest only" >/dev/null || notok "pause --sender $s"; done
later=$(date -u -d @$((NOW + 35 * DAY)) +%Y-%m-%dT%H:%M:%SZ)
{ jobs acme seq 100 ',"sequence":{"steps":[{"after":"2d","text":"bump"}]}'
  jobs acme plain 100
  jobs acme later 20 ",\"not_before\":\"$later\""
  jobs globex bulk 1600; } >"$T/now.jsonl"
at $NOW enqueue "$T/now.jsonl" >/dev/null && at $((NOW + 10)) run >/dev/null 2>&1 || notok "enqueue and ingest now"
for s in sa sb; do at $((NOW + 20)) resume --sender $s >/dev/null || notok "resume --sender $s"; done
eq "pending now: 1820 waiting, 100 follow-ups" \
  "$(q "SELECT count(*) FROM jobs WHERE state = 'waiting'") $(q "SELECT count(*) FROM jobs WHERE state = 'pending'")" "1820 100"

at $((NOW + 60)) plan --json >"$T/plan.json" 2>"$T/plan.err"; eq "plan --json exits 0" $? 0
at $((NOW + 60)) plan >"$T/plan.txt" 2>>"$T/plan.err"; eq "plan exits 0" $? 0

# every figure of plan --json against the hand computation above
python3 - "$T/plan.json" <<'EOF'
import json, sys
fails = 0
def res(name, good, detail=""):
    global fails
    print(("ok - " if good else "not ok - ") + name)
    if not good:
        fails += 1
        print("#   " + str(detail)[:600])
try:
    P = json.load(open(sys.argv[1]))
    C = P["costs"]
except Exception as e:
    res("plan --json carries a costs object", False, e)
    sys.exit(1)
def fig(sent, cost, fc, cost_next):
    return {"sent_30d": sent, "cost_30d": cost, "forecast_30d": fc, "cost_next_30d": cost_next}
res("costs: currency_free, priced, a 30-day period",
    (C.get("currency_free"), C.get("priced"), C.get("period_days")) == (True, True, 30), C)
res("costs: sent_since is now - 30 d, forecast_until now + 30 d (now = 2026-12-01T12:01:00Z)",
    (C.get("sent_since"), C.get("forecast_until")) == ("2026-11-01T12:01:00Z", "2026-12-31T12:01:00Z"), C)
res("costs: fixed_30d 12.00", C.get("fixed_30d") == 12.0, C.get("fixed_30d"))
clients = {c.get("client"): {k: v for k, v in c.items() if k != "client"} for c in C.get("clients", [])}
res("costs: clients acme, globex in that order", [c.get("client") for c in C.get("clients", [])] == ["acme", "globex"],
    C.get("clients"))
for name, want in (("acme", fig(900, 8.73, 300, 1.98)), ("globex", fig(350, 18.63, 1550, 26.40))):
    res("costs: client %s = %s" % (name, want), clients.get(name) == want, clients.get(name))
accounts = {a.get("account"): {k: v for k, v in a.items() if k != "account"} for a in C.get("accounts", [])}
for name, priced, want in (("ses", True, fig(900, 0.09, 300, 0.03)), ("plan", True, fig(350, 15.27, 1550, 16.35)),
                           ("spare", False, fig(0, 0.0, 0, 0.0))):
    want = dict(want, priced=priced)
    res("costs: account %s = %s" % (name, want), accounts.get(name) == want, accounts.get(name))
res("costs: the accounts are the configured ones", sorted(accounts) == ["plan", "ses", "spare"], sorted(accounts))
res("costs: total = 1250 sent, 27.36; 1850 forecast, 28.38", C.get("total") == fig(1250, 27.36, 1850, 28.38),
    C.get("total"))
res("costs: spare is named as unpriced", C.get("unpriced") == ["spare"], C.get("unpriced"))
# the forecast itself still says what the campaigns do (the costs read the same simulation)
camp = {(c["client"], c["name"]): c for c in P.get("campaigns", [])}
res("plan: globex/bulk finishes on day 31 (2027-01-01), acme/later on day 35",
    (camp.get(("globex", "bulk"), {}).get("finish", "")[:10], camp.get(("acme", "later"), {}).get("finish", "")[:10])
    == ("2027-01-01", "2027-01-05"), camp)
sys.exit(1 if fails else 0)
EOF
[ $? -eq 0 ] || nfail=$((nfail + 1))
[ -s "$T/plan.err" ] && sed 's/^/# stderr: /' "$T/plan.err"

# the text table: a row per client and the TOTAL row, after the campaigns, before the chart
row() { sed -n "/^CLIENT  *SENT 30D  *COST 30D  *FORECAST 30D  *COST NEXT 30D\$/,/^\$/p" "$1" | awk -v n="$2" '$1 == n { $1 = $1; print }'; }
eq "plan text: TOTAL row" "$(row "$T/plan.txt" TOTAL)" "TOTAL 1250 27.36 1850 28.38"
eq "plan text: acme row" "$(row "$T/plan.txt" acme)" "acme 900 8.73 300 1.98"
eq "plan text: globex row" "$(row "$T/plan.txt" globex)" "globex 350 18.63 1550 26.40"
check "plan text: the note names spare" grep -q '^  note: no price, counted as 0: spare$' "$T/plan.txt"
eq "plan text: the costs come after the campaigns and before the capacity chart" \
  "$(grep -e '^CLIENT  *CAMPAIGN' -e '^CLIENT  *SENT 30D' -e '^capacity per sender' "$T/plan.txt" | tr -s ' ' | cut -c1-22 | tr '\n' '|')" \
  "CLIENT CAMPAIGN PENDIN|CLIENT SENT 30D COST 3|capacity per sender, n|"
long=$(awk 'length > 100' "$T/plan.txt")
eq "plan text: no line over 100 columns" "$long" ""

# ---- no price anywhere (costs given all the same): counts, no money figures
newconf noprice '
providers = ( { name = "dry"; type = "file"; dir = "outbox"; } );
senders = ( { name = "s"; from = "S <s@s.example>"; provider = "dry"; daily_limit = 1000; } );' \
'costs = { vps_monthly = 12; other_monthly = 3; };'
jobs acme np 7 >"$T/np1.jsonl"
OUTREACH_NOW=$((NOW - 2 * DAY)) orc noprice enqueue "$T/np1.jsonl" >/dev/null &&
  OUTREACH_NOW=$((NOW - 2 * DAY + 1)) orc noprice run >/dev/null 2>&1 || notok "noprice: send 7"
jobs acme np2 4 ',"not_before":"2026-12-03T09:00:00Z"' >"$T/np2.jsonl"
OUTREACH_NOW=$NOW orc noprice enqueue "$T/np2.jsonl" >/dev/null &&
  OUTREACH_NOW=$((NOW + 1)) orc noprice run >/dev/null 2>&1 || notok "noprice: enqueue 4 for later"
OUTREACH_NOW=$((NOW + 60)) orc noprice check-config >"$T/np-cc.out" 2>&1
check "noprice: check-config says plan shows no money" \
  grep -q '^costs: vps_monthly 12.00, other_monthly 3.00 per 30 days; no account has a price, so plan shows no money figures$' \
  "$T/np-cc.out"
OUTREACH_NOW=$((NOW + 60)) orc noprice plan --json >"$T/np.json" 2>&1; eq "noprice: plan --json exits 0" $? 0
OUTREACH_NOW=$((NOW + 60)) orc noprice plan >"$T/np.txt" 2>&1; eq "noprice: plan exits 0" $? 0
eq "noprice: JSON counts, every money figure null, nothing unpriced" "$(python3 - "$T/np.json" <<'EOF'
import json, sys
C = json.load(open(sys.argv[1]))["costs"]
rows = C["clients"] + C["accounts"] + [C["total"]]
print(C["priced"], C["currency_free"], C["fixed_30d"], C["unpriced"],
      [(r["sent_30d"], r["forecast_30d"]) for r in rows],
      sorted({repr(r[k]) for r in rows for k in ("cost_30d", "cost_next_30d")}))
EOF
)" "False True None [] [(7, 4), (7, 4), (7, 4)] ['None']"
eq "noprice: text TOTAL row with '-' for money" "$(row "$T/np.txt" TOTAL)" "TOTAL 7 - 4 -"
eq "noprice: text acme row with '-' for money" "$(row "$T/np.txt" acme)" "acme 7 - 4 -"
check "noprice: the text says why there is no money" \
  grep -q '^  no money figures: no account has a price (providers\[\]\.price)$' "$T/np.txt"
finish
