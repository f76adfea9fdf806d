#!/usr/bin/env python3
"""tests/bench/maildir.py MAILDIR N SENT: N messages into MAILDIR/new for the
replies benchmark (tmp/, then a rename, as Maildir delivery does).  SENT holds
"rcpt message-id" lines: every N/len(SENT)-th message answers one of them by
In-Reply-To from its recipient; the rest come from strangers.  Standard library only."""
import os
import sys

SUB = os.environ.get("MAILDIR_SUB", "new")


def main():
    md, n = sys.argv[1], int(sys.argv[2])
    sent = [line.split() for line in open(sys.argv[3]) if line.strip()]
    per = max(1, n // max(1, len(sent)))
    st = os.stat(md)
    for i in range(n):
        k = i // per
        if i % per == 0 and k < len(sent):
            frm, extra = sent[k][0], "In-Reply-To: %s\r\nReferences: %s\r\n" % (sent[k][1], sent[k][1])
        else:
            frm, extra = "stranger%d@else%d.example" % (i, i % 97), ""
        msg = ("Message-ID: <b%d@bench.example>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nFrom: Someone <%s>\r\n"
               "To: anna@s1.example\r\nSubject: Re: Hello %d\r\n%sContent-Type: text/plain\r\n\r\nThanks.\r\n"
               % (i, frm, i, extra))
        p = os.path.join(md, "tmp", "b%d" % i)
        with open(p, "w") as f:
            f.write(msg)
        os.chown(p, st.st_uid, st.st_gid)   # as root: the mail user must own it (tests/peers/dovecot.sh)
        os.rename(p, os.path.join(md, SUB, "17960%05d.M%dP1.bench%s" % (i, i, ":2," if SUB == "cur" else "")))


if __name__ == "__main__":
    main()
