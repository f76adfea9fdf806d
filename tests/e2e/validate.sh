#!/bin/sh
# tests/e2e/validate.sh — `outreach validate` without the network (doc/design.md §13,
# §2): a table of tricky addresses (syntax as mail servers accept it, IDN to
# A-labels, display-name forms, smtputf8, role, disposable, typo, duplicate),
# the suppression list (global and per client), the exact §13 keys, one object
# per input line in input order with "input" the line as given, CSV input (email,
# to, --column), JSON Lines jobs ("to"), --csv output read back with python's csv,
# the summary on stderr, and the exit codes (0 ran, 65 unreadable, 64 usage).
# The MX part is tests/e2e/validate-dns.sh.
# san: yes
. "$(dirname "$0")/../lib.sh"

setup

# ---- the checker: TAP lines on stdout; counted into nfail by tap() --------------------------
cat >"$T/vcheck.py" <<'PY'
import csv, io, json, re, sys

KEYS = ["input", "address", "verdict", "reasons", "suggestion"]
REASONS = {"syntax", "no_mx", "null_mx", "disposable", "role", "typo", "duplicate",
           "suppressed", "smtputf8", "dns_timeout"}
INVALID, RISKY = {"syntax", "no_mx", "null_mx"}, {"disposable", "role", "typo", "duplicate", "suppressed"}
out = []

def tap(ok, name, detail=""):
    out.append(("ok - " if ok else "not ok - ") + name)
    if not ok and detail:
        out.append("#   " + detail)

def verdict_of(reasons):
    r = set(reasons)
    if r & INVALID: return "invalid"
    if r & RISKY: return "risky"
    if "dns_timeout" in r: return "unknown"
    return "ok"

def load(path):
    """stdout of validate --json: a list of objects (None for a line that is not JSON)."""
    raw = open(path, "rb").read()
    why = ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        why = "stdout is not UTF-8: %s" % e
        text = raw.decode("utf-8", "replace")
    objs = []
    if not text:
        return objs, why
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        try:
            objs.append(json.loads(line))
        except ValueError:
            objs.append(None)
    return objs, why

def shape(objs, label, inputs):
    """§13 shape: exactly the keys, the types, verdict matching reasons, input as given, order."""
    tap(objs is not None and len(objs) == len(inputs), label + ": one object per input line",
        "expected %d, got %s" % (len(inputs), None if objs is None else len(objs)))
    if objs is None:
        return
    bad = [i for i, o in enumerate(objs) if not isinstance(o, dict) or sorted(o) != sorted(KEYS)]
    tap(not bad, label + ": every object has exactly the keys " + ",".join(KEYS),
        "line(s) %s: %s" % ([b + 1 for b in bad[:5]], [objs[b] for b in bad[:2]]))
    typ = [i for i, o in enumerate(objs) if isinstance(o, dict) and not (
        isinstance(o.get("input"), str) and isinstance(o.get("address"), str)
        and o.get("verdict") in ("ok", "risky", "invalid", "unknown")
        and isinstance(o.get("reasons"), list) and set(o.get("reasons", [])) <= REASONS
        and (o.get("suggestion") is None or isinstance(o.get("suggestion"), str)))]
    tap(not typ, label + ": types, verdict and reasons from the §13 vocabulary",
        "line(s) %s" % [t + 1 for t in typ[:5]])
    inc = [i for i, o in enumerate(objs) if isinstance(o, dict) and isinstance(o.get("reasons"), list)
           and o.get("verdict") != verdict_of(o["reasons"])]
    tap(not inc, label + ": verdict follows the reasons (invalid > risky > unknown > ok)",
        "line(s) %s: %s" % ([c + 1 for c in inc[:5]], [objs[c] for c in inc[:2]]))
    mism = [i for i, (o, want) in enumerate(zip(objs, inputs)) if not isinstance(o, dict) or o.get("input") != want]
    tap(not mism, label + ": \"input\" is each line as given, in input order",
        "line %s: expected %r (%d chars), got %r (%d chars)" % (
            mism[0] + 1, inputs[mism[0]][:60], len(inputs[mism[0]]), (objs[mism[0]] or {}).get("input", "")[:60],
            len((objs[mism[0]] or {}).get("input", ""))) if mism else "")

def cmd_table(table, outfile):
    rows = json.load(open(table, encoding="utf-8"))
    objs, why = load(outfile)
    tap(not why, "table: stdout is UTF-8 JSON Lines", why)
    shape(objs, "table", [r["input"] for r in rows])
    if objs is None:
        return
    for r, o in zip(rows, objs):
        if not isinstance(o, dict):
            tap(False, "table: %s (%r)" % (r["name"], r["input"][:60]), "not a JSON object")
            continue
        got = (o.get("verdict"), sorted(o.get("reasons") or []))
        want = (r["verdict"], sorted(r["reasons"]))
        problems = []
        if got != want:
            problems.append("verdict/reasons %s, expected %s" % (got, want))
        if r.get("address") is not None and o.get("address") != r["address"]:
            problems.append("address %r, expected %r" % (o.get("address"), r["address"]))
        if "suggestion" in r and o.get("suggestion") != r["suggestion"]:
            problems.append("suggestion %r, expected %r" % (o.get("suggestion"), r["suggestion"]))
        tap(not problems, "table: %s -> %s%s" % (r["name"], r["verdict"],
            " (" + ",".join(r["reasons"]) + ")" if r["reasons"] else ""), "; ".join(problems))

def cmd_shape(label, infile, outfile):
    inputs = [l.rstrip("\r") for l in open(infile, encoding="utf-8", newline="").read().split("\n") if l.strip()]
    objs, why = load(outfile)
    tap(not why, label + ": stdout is UTF-8 JSON Lines", why)
    shape(objs, label, inputs)

def cmd_expect(label, outfile, *pairs):
    """pairs: ADDRESS=VERDICT:reason,reason (matched by position)."""
    objs, why = load(outfile)
    for i, p in enumerate(pairs):
        addr, rest = p.rsplit("=", 1)
        verdict, _, reasons = rest.partition(":")
        want = (addr, verdict, sorted(x for x in reasons.split(",") if x))
        o = objs[i] if objs and i < len(objs) and isinstance(objs[i], dict) else {}
        got = (o.get("address"), o.get("verdict"), sorted(o.get("reasons") or []))
        tap(got == want, "%s: %s -> %s%s" % (label, addr, verdict, " (" + reasons + ")" if reasons else ""),
            "got %s" % (got,))

def cmd_csvout(jsonfile, csvfile):
    objs, _ = load(jsonfile)
    raw = open(csvfile, encoding="utf-8", newline="").read()
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    tap(bool(rows) and rows[0] == KEYS, "--csv: header is " + ",".join(KEYS), "got %r" % (rows[:1],))
    body = rows[1:]
    tap(objs is not None and len(body) == len(objs), "--csv: one row per input line, same count as --json",
        "csv %d rows, json %s" % (len(body), None if objs is None else len(objs)))
    if objs is None:
        return
    diff = []
    for i, (row, o) in enumerate(zip(body, objs)):
        want = [o["input"], o["address"], o["verdict"], ";".join(o["reasons"]), o["suggestion"] or ""]
        if len(row) != 5 or row[:3] != want[:3] or sorted(filter(None, row[3].split(";"))) != sorted(o["reasons"]) \
                or row[4] != want[4]:
            diff.append((i + 2, row, want))
    tap(not diff, "--csv: every row (read with python csv) says what --json says",
        "row %d: %r vs %r" % diff[0] if diff else "")

def cmd_summary(outfile, errfile):
    objs, _ = load(outfile)
    err = open(errfile, encoding="utf-8", errors="replace").read()
    n = len(objs or [])
    counts = {v: sum(1 for o in objs or [] if isinstance(o, dict) and o.get("verdict") == v)
              for v in ("ok", "risky", "invalid", "unknown")}
    m = re.search(r"(\d+) addresses?: (\d+) ok, (\d+) risky, (\d+) invalid, (\d+) unknown", err)
    tap(bool(m), "--json: the summary is on stderr", "stderr: %r" % err[:200])
    if m:
        tap([int(x) for x in m.groups()] == [n, counts["ok"], counts["risky"], counts["invalid"], counts["unknown"]],
            "--json: the summary counts match the objects", "%r vs %d %r" % (m.group(0), n, counts))

cmd = sys.argv[1]
{"table": cmd_table, "shape": cmd_shape, "expect": cmd_expect, "csvout": cmd_csvout,
 "summary": cmd_summary}[cmd](*sys.argv[2:])
print("\n".join(out))
PY
# tap CMD...: runs the checker, prints its lines, counts its failures
tap() {
  _o=$(python3 "$T/vcheck.py" "$@" 2>&1)
  printf '%s\n' "$_o"
  _f=$(printf '%s\n' "$_o" | grep -c '^not ok - ')
  if ! printf '%s\n' "$_o" | grep -q '^ok - \|^not ok - '; then _f=1; echo "not ok - checker $1 crashed"; fi
  nfail=$((nfail + _f))
}

# ---- the table: input, verdict, reasons, address (None = not checked), suggestion ----------
python3 - "$T" <<'PY'
import json, sys
T = sys.argv[1]
A = "xn--e1afmkfd.xn--p1ai"                # пример.рф in A-labels
d253 = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
d254 = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
assert len(d253) == 253 and len(d254) == 254
def row(name, inp, verdict, reasons=(), address=None, **kw):
    r = {"name": name, "input": inp, "verdict": verdict, "reasons": list(reasons), "address": address}
    r.update(kw)
    return r
same = lambda s: s.lower()
rows = [
    # valid
    row("plain", "plain@example.com", "ok", [], "plain@example.com", suggestion=None),
    row("plus-tag", "bob+tag@example.com", "ok", [], "bob+tag@example.com"),
    row("dots in the local part", "first.middle.last@example.com", "ok", [], "first.middle.last@example.com"),
    row("quoted local part with a space", '"quoted local"@example.com', "ok", [], '"quoted local"@example.com'),
    row("quoted local part with an escaped quote", '"a\\"b"@example.com', "ok", [], '"a\\"b"@example.com'),
    row("quoted local part with an @ inside", '"x@y"@example.com', "ok", [], '"x@y"@example.com'),
    row("64-octet local part", "l" * 64 + "@example.com", "ok", [], "l" * 64 + "@example.com"),
    row("63-octet label", "a@" + "b" * 63 + ".com", "ok", [], "a@" + "b" * 63 + ".com"),
    row("253-octet domain", "a@" + d253, "ok", [], "a@" + d253),
    row("IDN domain to A-labels", "user@пример.рф", "ok", [], "user@" + A),
    row("IDN domain in capitals to A-labels", "user2@ПРИМЕР.РФ", "ok", [], "user2@" + A),
    row("display-name form, lower-cased", "Ivan <IVAN@Example.COM>", "ok", [], "ivan@example.com", suggestion=None),
    row("quoted display name with a comma", '"Doe, John" <John.Doe@example.com>', "ok", [], "john.doe@example.com"),
    row("display name and IDN domain", "Пётр <petr@пример.рф>", "ok", [], "petr@" + A),
    row("IDN müller.de", "hans@müller.de", "ok", [], "hans@xn--mller-kva.de"),
    row("IDNA 2008 keeps ß (faß.de is not fass.de)", "hans@faß.de", "ok", [], "hans@xn--fa-hia.de"),
    # invalid: syntax
    row("65-octet local part", "l" * 65 + "@example.com", "invalid", ["syntax"]),
    row("consecutive dots", "a..b@example.com", "invalid", ["syntax"]),
    row("leading dot", ".a@example.com", "invalid", ["syntax"]),
    row("trailing dot in the local part", "a.@example.com", "invalid", ["syntax"]),
    row("trailing dot in the domain", "a@example.com.", "invalid", ["syntax"]),
    row("consecutive dots in the domain", "a@example..com", "invalid", ["syntax"]),
    row("64-octet label", "a@" + "b" * 64 + ".com", "invalid", ["syntax"]),
    row("254-octet domain", "a@" + d254, "invalid", ["syntax"]),
    row("label starting with a hyphen", "a@-x.com", "invalid", ["syntax"]),
    row("label ending with a hyphen", "a@x-.com", "invalid", ["syntax"]),
    row("IPv4 address literal (outreach sends to names)", "a@[127.0.0.1]", "invalid", ["syntax"]),
    row("IPv6 address literal", "a@[IPv6:::1]", "invalid", ["syntax"]),
    row("no @", "plain.example.com", "invalid", ["syntax"]),
    row("IDN label IDNA 2008 disallows (a symbol)", "user@\u2603.com", "invalid", ["syntax"]),
    row("IDN label starting with a hyphen", "user@-пример.рф", "invalid", ["syntax"]),
    row("IDN domain with a trailing dot", "user@пример.рф.", "invalid", ["syntax"]),
    row("two @ outside quotes", "a@b@example.com", "invalid", ["syntax"]),
    row("space in the local part", "a b@example.com", "invalid", ["syntax"]),
    row("space in the domain", "ab@exa mple.com", "invalid", ["syntax"]),
    row("empty local part", "@example.com", "invalid", ["syntax"]),
    row("empty domain", "a@", "invalid", ["syntax"]),
    row("unterminated quoted local part", '"abc@example.com', "invalid", ["syntax"]),
    row("unescaped quote inside a quoted local part", '"a"b"@example.com', "invalid", ["syntax"]),
    # smtputf8
    row("UTF-8 local part", "юзер@example.com", "ok", ["smtputf8"], "юзер@example.com"),
    row("UTF-8 local part, IDN domain", "почта@пример.рф", "ok", ["smtputf8"], "почта@" + A),
    row("UTF-8 local part of 64 octets", "ю" * 32 + "@example.com", "ok", ["smtputf8"], "ю" * 32 + "@example.com"),
    row("UTF-8 local part of 66 octets", "ю" * 33 + "@example.com", "invalid", ["syntax"]),
    # risky: role
    row("role info@", "info@example.com", "risky", ["role"], "info@example.com"),
    row("role noreply@", "noreply@example.com", "risky", ["role"], "noreply@example.com"),
    row("role postmaster@", "postmaster@example.com", "risky", ["role"], "postmaster@example.com"),
    row("role in capitals", "Sales@example.org", "risky", ["role"], "sales@example.org"),
    # risky: disposable
    row("disposable domain", "x@mailinator.com", "risky", ["disposable"], "x@mailinator.com"),
    row("subdomain of a disposable domain", "x@sub.mailinator.com", "risky", ["disposable"], "x@sub.mailinator.com"),
    row("role at a disposable domain", "info@mailinator.com", "risky", ["disposable", "role"]),
    # risky: typo
    row("typo gmial.com", "bob@gmial.com", "risky", ["typo"], "bob@gmial.com", suggestion="bob@gmail.com"),
    row("typo yahooo.com", "bob@yahooo.com", "risky", ["typo"], "bob@yahooo.com", suggestion="bob@yahoo.com"),
    row("typo hotmial.com", "bob@hotmial.com", "risky", ["typo"], "bob@hotmial.com", suggestion="bob@hotmail.com"),
    row("typo gmail.con", "bob@gmail.con", "risky", ["typo"], "bob@gmail.con", suggestion="bob@gmail.com"),
    row("typo in capitals keeps the local part", "Bob.Smith@GMIAL.com", "risky", ["typo"],
        "bob.smith@gmial.com", suggestion="bob.smith@gmail.com"),
    row("gmail.com itself is no typo", "carol@gmail.com", "ok", [], "carol@gmail.com", suggestion=None),
    row("ymail.com (Yahoo's own domain) is no typo", "carol@ymail.com", "ok", [], "carol@ymail.com", suggestion=None),
    # risky: duplicate (of earlier lines, in another form)
    row("duplicate in another case", "PLAIN@EXAMPLE.COM", "risky", ["duplicate"], "plain@example.com"),
    row("duplicate in display-name form", "Plain Person <plain@example.com>", "risky", ["duplicate"], "plain@example.com"),
    row("duplicate IDN given in A-labels", "user@" + A, "risky", ["duplicate"], "user@" + A),
    row("duplicate of a role address", "INFO@example.com", "risky", ["duplicate", "role"], "info@example.com"),
]
json.dump(rows, open(T + "/table.json", "w", encoding="utf-8"), ensure_ascii=False)
open(T + "/list.txt", "w", encoding="utf-8").write("".join(r["input"] + "\n" for r in rows))
PY

or validate --json "$T/list.txt" >"$T/out" 2>"$T/err"; rc=$?
eq "validate --json list.txt: exit 0" "$rc" 0
tap table "$T/table.json" "$T/out"
tap summary "$T/out" "$T/err"

# the same through standard input
or validate --json - <"$T/list.txt" >"$T/out.stdin" 2>/dev/null; rc=$?
eq "validate --json - (stdin): exit 0" "$rc" 0
check "validate --json -: the same objects as from the file" cmp -s "$T/out" "$T/out.stdin"

# --csv: read back with python csv, agrees with --json
or validate --csv "$T/list.txt" >"$T/out.csv" 2>"$T/err.csv"; rc=$?
eq "validate --csv: exit 0" "$rc" 0
tap csvout "$T/out" "$T/out.csv"
check "validate --csv: the summary is on stderr" grep -q 'addresses' "$T/err.csv"

# the human table keeps the summary on stdout
or validate "$T/list.txt" >"$T/out.txt" 2>"$T/err.txt"; rc=$?
eq "validate (table): exit 0" "$rc" 0
check "validate (table): one line per address plus a header and the summary on stdout" \
  test "$(grep -c . "$T/out.txt")" -eq "$(($(wc -l <"$T/list.txt") + 2))"

# the table prints the address and its verdict, not the CSV row, and never half a UTF-8 character
printf 'name,email,note\n%s,not-an-addr\xc3\xa9ss%s,%s\n' "xxИванИванИванИванИванИванИван" "ёёёёёёёёёёёёёёёёёёёёёёёёёёёёё" "примечание" >"$T/utf8.csv"
or validate "$T/utf8.csv" >"$T/out.txt" 2>"$T/err.txt"; rc=$?
eq "validate (table) of a UTF-8 CSV: exit 0" "$rc" 0
row=$(sed -n 2p "$T/out.txt")
check "validate (table): the row shows the address with its verdict, not the other columns ($row)" \
  sh -c "printf '%s' '$row' | grep -q '^not-an-addr.* invalid ' && ! printf '%s' '$row' | grep -q 'Иван\|примечание'"
check "validate (table): valid UTF-8 throughout (grep does not call it binary)" \
  python3 -c "open('$T/out.txt', encoding='utf-8', errors='strict').read()"

# ---- a text list whose first line has a comma (a display name) is still a text list --------
printf '"Doe, Jane" <jane@example.com>\nbob@example.com\n' >"$T/names.txt"
or validate --json "$T/names.txt" >"$T/out" 2>"$T/err"; rc=$?
eq "text list starting with \"Doe, Jane\" <...>: exit 0" "$rc" 0
tap shape "names.txt" "$T/names.txt" "$T/out"
tap expect "names.txt" "$T/out" "jane@example.com=ok:" "bob@example.com=ok:"

# ---- blank lines are not addresses; CRLF line ends are not part of the input -------------------
printf 'crlf1@example.com\r\n\r\n  \ncrlf2@example.com\r\n' >"$T/crlf.txt"
or validate --json "$T/crlf.txt" >"$T/out" 2>/dev/null; rc=$?
eq "CRLF list with blank lines: exit 0" "$rc" 0
tap shape "crlf.txt" "$T/crlf.txt" "$T/out"      # inputs: the non-blank lines, without CR
tap expect "crlf.txt" "$T/out" "crlf1@example.com=ok:" "crlf2@example.com=ok:"

# ---- CSV input: column email (any case), to, --column NAME; input = the row as given --------
cat >"$T/people.csv" <<'EOF'
name,Email,note
Ann,ann@example.com,first
"Smith, Bob",Bob@Example.com,"quoted, with comma"
Info,info@example.com,
Dup,ANN@example.com,again
Bad,not-an-address,x
EOF
or validate --json "$T/people.csv" >"$T/out" 2>"$T/err"; rc=$?
eq "CSV (column Email): exit 0" "$rc" 0
tail -n +2 "$T/people.csv" >"$T/people.rows"
tap shape "people.csv" "$T/people.rows" "$T/out"
tap expect "people.csv" "$T/out" "ann@example.com=ok:" "bob@example.com=ok:" "info@example.com=risky:role" \
  "ann@example.com=risky:duplicate" "=invalid:syntax"

printf 'to,subject\nto1@example.com,Hi\n"Ann <to2@Example.com>",Hi\n' >"$T/to.csv"
or validate --json "$T/to.csv" >"$T/out" 2>/dev/null; rc=$?
eq "CSV (column to): exit 0" "$rc" 0
tail -n +2 "$T/to.csv" >"$T/to.rows"
tap shape "to.csv" "$T/to.rows" "$T/out"
tap expect "to.csv" "$T/out" "to1@example.com=ok:" "to2@example.com=ok:"

printf 'id,Work Email,email\n1,w1@example.com,ignored@example.com\n2,w2@mailinator.com,\n' >"$T/col.csv"
or validate --json --column 'Work Email' "$T/col.csv" >"$T/out" 2>/dev/null; rc=$?
eq "CSV --column 'Work Email': exit 0" "$rc" 0
tail -n +2 "$T/col.csv" >"$T/col.rows"
tap shape "col.csv" "$T/col.rows" "$T/out"
tap expect "--column" "$T/out" "w1@example.com=ok:" "w2@mailinator.com=risky:disposable"

or validate --json --column nosuch "$T/col.csv" >/dev/null 2>"$T/err"; rc=$?
eq "CSV --column naming no column: exit 65" "$rc" 65
check "CSV --column naming no column: stderr says which" grep -q 'nosuch' "$T/err"

# a row whose other columns are long: "input" is still the whole row, and UTF-8
python3 -c "
print('email,note')
print('long@example.com,' + 'x' * 3000)
print('utf@example.com,' + 'ю' * 600)
print('short@example.com,hi')" >"$T/long.csv"
or validate --json "$T/long.csv" >"$T/out" 2>/dev/null; rc=$?
eq "CSV with 3000-octet and 1200-octet rows: exit 0" "$rc" 0
tail -n +2 "$T/long.csv" >"$T/long.rows"
tap shape "long.csv" "$T/long.rows" "$T/out"
tap expect "long.csv" "$T/out" "long@example.com=ok:" "utf@example.com=ok:" "short@example.com=ok:"

# ---- JSON Lines jobs: the "to" field; input = the JSON line ------------------------------------
{ job jl1@example.com; job 'Jo <JL2@Example.com>'; echo '{"client":"acme","subject":"no to","text":"x"}';
  job noreply@example.com; job jl1@example.com globex; } >"$T/jobs.jsonl"
or validate --json "$T/jobs.jsonl" >"$T/out" 2>/dev/null; rc=$?
eq "JSON Lines jobs: exit 0" "$rc" 0
tap shape "jobs.jsonl" "$T/jobs.jsonl" "$T/out"
tap expect "jobs.jsonl" "$T/out" "jl1@example.com=ok:" "jl2@example.com=ok:" "=invalid:syntax" \
  "noreply@example.com=risky:role" "jl1@example.com=risky:duplicate"

# ---- the suppression list: global, per client, and an IDN address --------------------------------
or suppress add 'Sup@Example.com' >/dev/null 2>&1
or suppress add 'cli@example.com' --client acme >/dev/null 2>&1
or suppress add 'idn@пример.рф' >/dev/null 2>&1
printf 'sup@example.com\ncli@example.com\nother@example.com\nidn@пример.рф\n' >"$T/sup.txt"
or validate --json "$T/sup.txt" >"$T/out" 2>/dev/null; rc=$?
eq "suppressed: exit 0" "$rc" 0
tap expect "suppressed (no --client)" "$T/out" "sup@example.com=risky:suppressed" "cli@example.com=ok:" \
  "other@example.com=ok:" "idn@xn--e1afmkfd.xn--p1ai=risky:suppressed"
or validate --json --client acme "$T/sup.txt" >"$T/out" 2>/dev/null
tap expect "suppressed (--client acme)" "$T/out" "sup@example.com=risky:suppressed" \
  "cli@example.com=risky:suppressed" "other@example.com=ok:"
or validate --json --client globex "$T/sup.txt" >"$T/out" 2>/dev/null
tap expect "suppressed (--client globex)" "$T/out" "sup@example.com=risky:suppressed" "cli@example.com=ok:" \
  "other@example.com=ok:"

# ---- exit codes ---------------------------------------------------------------------------------------
or validate --json "$T/no-such-file.txt" >/dev/null 2>"$T/err"; rc=$?
eq "unreadable file (missing): exit 65" "$rc" 65
check "unreadable file: stderr names it" grep -q 'no-such-file\.txt' "$T/err"
mkdir "$T/adir"
or validate --json "$T/adir" >/dev/null 2>&1; rc=$?
eq "unreadable file (a directory): exit 65" "$rc" 65
printf 'ok@example.com\n\377\376bad@example.com\n' >"$T/latin.txt"
or validate --json "$T/latin.txt" >/dev/null 2>&1; rc=$?
eq "not UTF-8 text: exit 65" "$rc" 65
or validate >/dev/null 2>&1; rc=$?
eq "no FILE: exit 64" "$rc" 64
or validate --json --csv "$T/list.txt" >/dev/null 2>&1; rc=$?
eq "--json with --csv: exit 64" "$rc" 64
or validate --frobnicate "$T/list.txt" >/dev/null 2>&1; rc=$?
eq "unknown option: exit 64" "$rc" 64
or validate "$T/list.txt" "$T/sup.txt" >/dev/null 2>&1; rc=$?
eq "two FILEs: exit 64" "$rc" 64
or validate --json "$T/list.txt" --column >/dev/null 2>&1; rc=$?
eq "--column without NAME: exit 64" "$rc" 64
: >"$T/empty.txt"
or validate --json "$T/empty.txt" >"$T/out" 2>/dev/null; rc=$?
eq "empty file: exit 0" "$rc" 0
eq "empty file: no objects" "$(wc -c <"$T/out")" 0

finish
