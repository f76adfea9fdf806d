#!/usr/bin/env bash
# tests/e2e/systemd.sh — the systemd units in contrib/systemd/ pass `systemd-analyze
# verify` without a single warning, and say what the contract says (oneshot tick every
# minute, graceful stop longer than the run's 50 s deadline).
#
# verify checks that ExecStart's binary exists, so the units are copied into a temp dir
# with /usr/local/bin/outreach replaced by an executable that exists here (./outreach if
# built, else /bin/true). A missing systemd-analyze is a failure, not a skip: CI installs
# the systemd package. Prints `ok - NAME` / `not ok - NAME`; exits 0 if all passed, else 1.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=$root/contrib/systemd
nfail=0

ok()    { printf 'ok - %s\n' "$1"; }
notok() { printf 'not ok - %s\n' "$1"; nfail=$((nfail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
diag()  { sed 's/^/# /'; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/outreach-systemd.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# --- the unit files are there and say what the contract says ------------------------
svc=$src/outreach.service
tmr=$src/outreach.timer
check "units present" test -f "$svc" -a -f "$tmr"

has() { grep -qxF -- "$2" "$1"; }
check "service: Type=oneshot"   has "$svc" "Type=oneshot"
check "service: ExecStart runs one tick" \
      has "$svc" "ExecStart=/usr/local/bin/outreach -c /etc/outreach/outreach.conf run"
check "service: User=outreach"  has "$svc" "User=outreach"
check "service: KillSignal=SIGTERM" has "$svc" "KillSignal=SIGTERM"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9][0-9]*\)$/\1/p' "$svc" | tail -n 1)
check "service: TimeoutStopSec (${stop:-unset}) > run deadline 50 s" \
      test "${stop:-0}" -gt 50
check "service: spool and reports writable" \
      has "$svc" "ReadWritePaths=/var/spool/outreach /var/lib/outreach"
check "timer: OnCalendar=minutely" has "$tmr" "OnCalendar=minutely"
check "timer: AccuracySec=1s"      has "$tmr" "AccuracySec=1s"
check "timer: Persistent=false"    has "$tmr" "Persistent=false"
check "timer: starts outreach.service" has "$tmr" "Unit=outreach.service"

# --- systemd-analyze verify ------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    notok "systemd-analyze installed (apt-get install systemd)"
else
    ok "systemd-analyze installed"
    if [ -x "$root/outreach" ] && [ -f "$root/outreach" ]; then
        bin=$root/outreach
    else
        bin=/bin/true
    fi
    # '#' as the sed delimiter: refuse a path that contains one rather than mangle it.
    case $bin in *'#'*) bin=/bin/true ;; esac
    sed "s#^ExecStart=/usr/local/bin/outreach #ExecStart=$bin #" "$svc" > "$tmp/outreach.service"
    cp "$tmr" "$tmp/outreach.timer"
    check "service copy runs $bin" grep -q "^ExecStart=$bin " "$tmp/outreach.service"

    # Verify each unit on its own (so a warning is pinned on the right one) and both
    # together (the timer's Unit= must resolve). Any output line that names one of our
    # units or the temp dir is a warning about the units and fails the check; other
    # lines (about the host's own units) are shown as diagnostics only.
    verify() {
        local name=$1; shift
        local out rc bad
        out=$(cd "$tmp" && SYSTEMD_LOG_COLOR=0 SYSTEMD_PAGER=cat \
              systemd-analyze verify "$@" 2>&1)
        rc=$?
        bad=$(printf '%s\n' "$out" |
              grep -F -e outreach.service -e outreach.timer -e "$tmp" || true)
        if [ $rc -eq 0 ] && [ -z "$bad" ]; then
            ok "$name"
            [ -n "$out" ] && printf '%s\n' "$out" | diag
        else
            notok "$name (exit $rc, warnings below)"
            [ -n "$out" ] && printf '%s\n' "$out" | diag
        fi
        return 0
    }
    verify "systemd-analyze verify outreach.service" "$tmp/outreach.service"
    verify "systemd-analyze verify outreach.timer"   "$tmp/outreach.timer"
    verify "systemd-analyze verify both units"       "$tmp/outreach.service" "$tmp/outreach.timer"
fi

[ "$nfail" -eq 0 ] && exit 0 || exit 1
