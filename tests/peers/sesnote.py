#!/usr/bin/env python3
"""sesnote.py: one SES notification body, as Amazon SES publishes it to SNS and SQS
(tests/data/specs: the notification contents SES documents), for the feed tests.

    python3 sesnote.py OUT KIND FORM MESSAGEID RCPT KEY TIME [JOBTAG]

KIND bounce|softbounce|complaint|delivery; FORM sns|raw|sns-event|raw-event
(an identity notification or event publishing, in an SNS envelope or raw);
TIME epoch seconds; JOBTAG, with an event form, the `job` EmailTag.  Standard
library only.
"""
import json, sys, time


def iso(t): return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def mk(a):
    """OUT KIND FORM MESSAGEID RCPT KEY TIME [JOBTAG] into OUT."""
    out, kind, form, mid, rcpt, key, t = a[:7]
    job = a[7] if len(a) > 7 else None
    t = float(t); event = form.endswith("event")
    tname = {"bounce": "Bounce", "softbounce": "Bounce", "complaint": "Complaint", "delivery": "Delivery"}[kind]
    mail = {"timestamp": iso(t - 30), "source": "sender@example.com", "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
            "sendingAccountId": "123456789012", "messageId": mid, "destination": [rcpt], "headersTruncated": False,
            "headers": [{"name": "To", "value": rcpt}, {"name": "Message-ID", "value": "<ours@example.com>"}],
            "commonHeaders": {"to": [rcpt], "messageId": "<ours@example.com>", "subject": "Hi"}}
    if event:
        mail["tags"] = {"ses:configuration-set": ["cs"], "ses:caller-identity": ["outreach"]}
        if job: mail["tags"]["job"] = [job]
    n = {"eventType" if event else "notificationType": tname, "mail": mail}
    if kind in ("bounce", "softbounce"):
        n["bounce"] = {"bounceType": "Permanent" if kind == "bounce" else "Transient",
                       "bounceSubType": "General" if kind == "bounce" else "MailboxFull",
                       "bouncedRecipients": [{"emailAddress": rcpt, "action": "failed", "status": "5.1.1",
                                              "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                       "timestamp": iso(t), "feedbackId": key, "reportingMTA": "dsn; a1.example.com"}
    elif kind == "complaint":
        n["complaint"] = {"complainedRecipients": [{"emailAddress": rcpt}], "timestamp": iso(t), "feedbackId": key,
                          "complaintFeedbackType": "abuse", "userAgent": "ExampleCorp Feedback Loop (V0.01)"}
    else:
        n["delivery"] = {"timestamp": iso(t), "processingTimeMillis": 546, "recipients": [rcpt],
                         "smtpResponse": "250 ok: Message accepted", "reportingMTA": "a8-70.smtp-out.amazonses.com"}
    body = json.dumps(n)
    if form.startswith("sns"):
        body = json.dumps({"Type": "Notification", "MessageId": "00000000-0000-4000-8000-%012d" % abs(hash(key) % 10**12),
                           "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-feedback", "Message": body,
                           "Timestamp": iso(t + 1), "SignatureVersion": "1", "Signature": "SYNTHETIC",
                           "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
                           "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}, indent=2)
    with open(out, "w") as f: f.write(body)


if __name__ == "__main__":
    if len(sys.argv) < 8:
        sys.exit(__doc__)
    mk(sys.argv[1:])
