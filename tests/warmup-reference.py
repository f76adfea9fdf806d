#!/usr/bin/env python3
"""tests/warmup-reference.py — the warm-up reference table, computed exactly.

    python3 tests/warmup-reference.py > table.tsv

Prints the table tests/unit.c compares or_warmup_volume() against: a header
line, then one row per (first, daily_limit, days, curve, day) of the grid
below, tab-separated, days 0 .. days+1.  The volume follows doc/design.md §10:
on day d (d < days)

    linear     v = first + (daily_limit - first) * d / days
    geometric  v = first * (daily_limit / first) ** (d / days)
    volume     = min(daily_limit, floor(v + 1e-9))

and daily_limit from d = days on.  The C code works in double precision; this
script works with exact rationals (fractions.Fraction), so it is a computation
independent of the one under test.  The geometric v is irrational in general:
floor(v + eps) is found as the largest integer n with n - eps <= v, compared
exactly in integers after raising both sides to the power `days`:
(n - eps) ** days <= first ** (days - d) * daily_limit ** d.
Standard library only.
"""
from fractions import Fraction
import sys

FIRSTS = ("1", "5", "10", "15", "20", "40")
LIMITS = (8, 30, 50, 100, 160, 320, 350, 400)
DAYS = (3, 7, 10, 14, 15, 21, 28)
CURVES = ("linear", "geometric")
EPS = Fraction(1, 10**9)


def floor_eps(v):
    """floor(v + 1e-9) of an exact rational v."""
    return (v + EPS).__floor__()


def geometric_floor(first, limit, days, d):
    """floor(first * (limit/first) ** (d/days) + 1e-9), exactly."""
    target = first ** (days - d) * Fraction(limit) ** d   # v ** days

    def fits(n):   # n - eps <= v, both sides positive once n - eps > 0
        return n - EPS <= 0 or (n - EPS) ** days <= target

    # v lies between first and limit (either order): a bisection over that span
    lo, hi = 0, max(int(first), limit) + 1        # fits(lo) holds, fits(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def volume(first, limit, days, curve, d):
    if d < 0:
        return 0
    if d >= days:
        return limit
    if curve == "linear":
        n = floor_eps(first + (limit - first) * Fraction(d, days))
    else:
        n = geometric_floor(first, limit, days, d)
    return min(limit, n)


def main():
    out = sys.stdout
    out.write("first\tdaily_limit\tdays\tcurve\tday\tvolume\n")
    for f in FIRSTS:
        first = Fraction(f)
        for limit in LIMITS:
            for days in DAYS:
                for curve in CURVES:
                    for d in range(days + 2):
                        out.write("%s\t%d\t%d\t%s\t%d\t%d\n" % (f, limit, days, curve, d,
                                                               volume(first, limit, days, curve, d)))


if __name__ == "__main__":
    main()
