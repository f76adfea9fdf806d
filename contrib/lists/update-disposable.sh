#!/bin/sh
# make update-lists: refresh conf/disposable-domains.txt from the npm package
# disposable-email-domains (index.json + wildcard.json), one lower-case domain
# a line, sorted, with its version recorded in conf/disposable-domains.version.
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent disposable-email-domains${1:+@$1} >/dev/null && tar xzf ./*.tgz)
python3 - "$tmp/package" <<'PY'
import json, re, sys
pkg = sys.argv[1]
meta = json.load(open(pkg + "/package.json"))
names = set()
for f in ("index.json", "wildcard.json"):
    for d in json.load(open(pkg + "/" + f)):
        d = d.strip().lower().rstrip(".")
        if re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", d) and "." in d:
            names.add(d)
open("conf/disposable-domains.txt", "w").write("".join(sorted(d + "\n" for d in names)))
open("conf/disposable-domains.version", "w").write(
    "package disposable-email-domains %s (npm), repository %s, licence %s; %d domains\n"
    % (meta["version"], meta.get("repository", "?"), meta.get("license", "?"), len(names)))
PY
cat conf/disposable-domains.version
