#!/bin/sh
# make install / make uninstall into a DESTDIR: every file where README's Install
# section says, with its mode; the installed units name the installed binary and pass
# `systemd-analyze verify` (and fail it when that binary is missing); a second install
# keeps an edited config; uninstall removes what install put and keeps an edited
# config; PREFIX=/usr (the Debian package's layout) moves every path the files name;
# debian/changelog carries the binary's version.
# san: no
. "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
D=$T/dest
inst() { make -s -C "$root" "$@" >"$T/make.out" 2>&1 || { cat "$T/make.out"; return 1; }; }
mode() { stat -c %a "$1" 2>/dev/null; }

check "make install DESTDIR" inst install DESTDIR="$D"
for f in usr/local/bin/outreach:755 usr/local/share/man/man1/outreach.1:644 \
         etc/outreach/outreach.conf.example:644 etc/outreach/outreach.conf:644 \
         usr/local/lib/systemd/system/outreach.service:644 \
         usr/local/lib/systemd/system/outreach.timer:644 \
         usr/local/share/doc/outreach/README.md:644 usr/local/share/doc/outreach/LICENSE:644 \
         usr/local/share/doc/outreach/spool-README:644 \
         usr/local/share/doc/outreach/systemd/README.md:644 \
         usr/local/share/doc/outreach/cron/outreach.cron:644 \
         usr/local/share/doc/outreach/prometheus/outreach-rules.yml:644 \
         usr/local/share/doc/outreach/prometheus/README.md:644 \
         usr/local/share/doc/outreach/grafana/outreach.json:644; do
  eq "installed /${f%:*} mode ${f#*:}" "$(mode "$D/${f%:*}")" "${f#*:}"
done
# doc/*.md (the contract README cites) beside the README that cites it
for f in $(cd "$root" && ls doc/*.md 2>/dev/null); do
  eq "installed /usr/local/share/doc/outreach/$f mode 644" "$(mode "$D/usr/local/share/doc/outreach/$f")" 644
done
eq "installed binary runs" "$("$D/usr/local/bin/outreach" version)" "$("$OR" version)"
check "installed config is the sample" cmp -s "$root/conf/outreach.conf" "$D/etc/outreach/outreach.conf"
svc=$D/usr/local/lib/systemd/system/outreach.service
check "service runs the installed binary" \
  grep -qxF "ExecStart=/usr/local/bin/outreach -c /etc/outreach/outreach.conf run" "$svc"
check "cron file runs the installed binary as user outreach" \
  grep -qE '^\* \* \* \* \* +outreach +/usr/local/bin/outreach -c /etc/outreach/outreach.conf run$' \
  "$D/usr/local/share/doc/outreach/cron/outreach.cron"
check "cron file says to create user outreach first" \
  grep -q 'useradd' "$D/usr/local/share/doc/outreach/cron/outreach.cron"

# verify resolves ExecStart= under --root, which must also hold systemd's own units
# (sysinit.target and the like): a copy of the host's, absolute links and all.
mkdir -p "$D/lib/systemd"
cp -a /lib/systemd/system "$D/lib/systemd/"
verify() {
  out=$(cd "$T" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --root="$D" \
        /usr/local/lib/systemd/system/outreach.service /usr/local/lib/systemd/system/outreach.timer 2>&1)
  rc=$?
  bad=$(printf '%s\n' "$out" | grep -F -e outreach.service -e outreach.timer)
  [ $rc -eq 0 ] && [ -z "$bad" ]
}
if verify; then ok "systemd-analyze verify: installed units"
else notok "systemd-analyze verify: installed units" "exit $rc: $out"; fi
mv "$D/usr/local/bin/outreach" "$T/outreach.moved"
if verify; then notok "systemd-analyze verify fails without the installed binary"
else ok "systemd-analyze verify fails without the installed binary"; fi
mv "$T/outreach.moved" "$D/usr/local/bin/outreach"
rm -rf "$D/lib"

# a second install: the admin's config stays, the sample beside it is the new one
echo '# edited by the admin' >>"$D/etc/outreach/outreach.conf"
echo '# an old sample' >>"$D/etc/outreach/outreach.conf.example"
check "second make install" inst install DESTDIR="$D"
check "second install keeps the edited config" grep -qx '# edited by the admin' "$D/etc/outreach/outreach.conf"
check "second install says it kept the config" grep -q 'outreach.conf exists: left as it is' "$T/make.out"
check "second install refreshes outreach.conf.example" \
  cmp -s "$root/conf/outreach.conf" "$D/etc/outreach/outreach.conf.example"

check "make uninstall" inst uninstall DESTDIR="$D"
eq "uninstall leaves only the edited config" "$(cd "$D" && find . -type f)" "./etc/outreach/outreach.conf"
check "uninstall says it kept the edited config" grep -q 'differs from the sample: left in place' "$T/make.out"
rm -rf "$D"
inst install DESTDIR="$D" && inst uninstall DESTDIR="$D"
eq "install then uninstall leaves no file" "$(cd "$D" && find . ! -type d)" ""
eq "... and no folder of ours" "$(cd "$D" && find . -path '*outreach*')" ""

# the Debian package's layout: every path the installed files name follows
rm -rf "$D"
check "make install PREFIX=/usr" inst install DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system
check "PREFIX=/usr: binary in /usr/bin" test -x "$D/usr/bin/outreach"
check "PREFIX=/usr: service runs /usr/bin/outreach" \
  grep -qxF "ExecStart=/usr/bin/outreach -c /etc/outreach/outreach.conf run" "$D/lib/systemd/system/outreach.service"
check "PREFIX=/usr: cron file runs /usr/bin/outreach" \
  grep -q ' /usr/bin/outreach -c /etc/outreach/outreach.conf run$' "$D/usr/share/doc/outreach/cron/outreach.cron"
eq "PREFIX=/usr: no file names /usr/local" \
  "$(grep -rl -e /usr/local/bin/outreach -e /usr/local/share "$D/lib" "$D/usr/share/doc/outreach/cron" 2>/dev/null)" ""

# the package version is the binary's (make deb refuses otherwise)
eq "debian/changelog version = outreach version" \
  "$(cd "$root" && dpkg-parsechangelog -S Version)" "$("$OR" version | sed 's/^outreach //')"
finish
