#!/usr/bin/env node
// A loopback SMTP peer for outreach's provider tests (smtp-server 3.21.6).
//
//   node smtp-peer.js PORT CERT KEY USER PASS OUTDIR [HELO-CHECK|greet-554]
//
// Listens on 127.0.0.1:PORT; STARTTLS with CERT/KEY; AUTH PLAIN or LOGIN is
// offered and accepted only after STARTTLS (before it: 538), and required
// before MAIL (530).  Each accepted message is saved as OUTDIR/N.eml with
// OUTDIR/N.json beside it ({"id", "mailFrom", "rcptTo": [...], "user",
// "secure", "helo"}); every RCPT TO is appended to OUTDIR/rcpt.log as
// "<helo> <address as sent>".  Replies carry only the enhanced codes written
// here.  Recipients whose local part starts with
//   reject    get "550 5.1.1 no such user"
//   throttle  "454 Throttling failure: Maximum sending rate exceeded." (SES)
//   dead      "554 5.1.1 <addr>: Recipient address rejected: User unknown" (Postfix)
//   disabled  "550 5.2.1 mailbox disabled"
//   nullmx    "556 5.1.10 recipient domain publishes a null MX"
//   policy    "550 5.7.1 message refused by policy"
//   nomailbox "553 no such mailbox" (no enhanced code)
//   shed      "421 4.7.0 too busy, closing transmission channel"
//   grey      "451 4.7.1 greylisted, try again later"
//   slow      "454 4.7.0 Throttling failure: try again after 1000000000 seconds"
// HELO-CHECK is Postfix's reject_non_fqdn_helo_hostname for a name without a
// dot: "helo-ehlo" answers EHLO/HELO "504 5.5.2 <name>: Helo command rejected:
// need fully-qualified hostname"; "helo-rcpt" gives that answer to each RCPT
// (Postfix's default smtpd_delay_reject = yes).  "greet-554" answers every
// connection "554 No SMTP service here" in place of the 220 greeting and
// closes it (a relay refusing this client's address, before EHLO).  DATA is answered
// "250 Message queued as <id>".  Prints "smtp-peer listening on PORT" once ready.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { SMTPServer } = require('smtp-server');

const [port, certFile, keyFile, user, pass, outdir, heloCheck] = process.argv.slice(2);
if (!outdir) {
    console.error('usage: node smtp-peer.js PORT CERT KEY USER PASS OUTDIR');
    process.exit(64);
}
fs.mkdirSync(outdir, { recursive: true });
let n = 0;

function fail(code, text) {
    const e = new Error(text);
    e.responseCode = code;
    return e;
}

const heloRejected = (name) => '5.5.2 <' + name + '>: Helo command rejected: need fully-qualified hostname';
if (heloCheck === 'helo-ehlo') {
    const { SMTPConnection } = require('smtp-server/lib/smtp-connection.js');
    for (const h of ['handler_EHLO', 'handler_HELO']) {
        const orig = SMTPConnection.prototype[h];
        SMTPConnection.prototype[h] = function (command, callback) {
            const name = command.toString().trim().split(/\s+/)[1] || '';
            if (name.includes('.')) return orig.call(this, command, callback);
            this.send(504, heloRejected(name), false);
            return callback();
        };
    }
}
const replies = [
    ['reject', 550, '5.1.1 no such user'],
    ['throttle', 454, 'Throttling failure: Maximum sending rate exceeded.'],
    ['dead', 554, '5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table'],
    ['disabled', 550, '5.2.1 mailbox disabled'],
    ['nullmx', 556, '5.1.10 recipient domain publishes a null MX'],
    ['policy', 550, '5.7.1 message refused by policy'],
    ['nomailbox', 553, 'no such mailbox'],
    ['shed', 421, '4.7.0 too busy, closing transmission channel'],
    ['grey', 451, '4.7.1 greylisted, try again later'],
    ['slow', 454, '4.7.0 Throttling failure: try again after 1000000000 seconds'],
];

const server = new SMTPServer({
    secure: false,
    hideENHANCEDSTATUSCODES: true,
    key: fs.readFileSync(keyFile),
    cert: fs.readFileSync(certFile),
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    authOptional: false,
    logger: false,
    size: 50 * 1024 * 1024,
    onConnect(session, cb) {
        if (heloCheck === 'greet-554') return cb(fail(554, 'No SMTP service here'));
        return cb();
    },
    onAuth(auth, session, cb) {
        if (!session.secure) return cb(fail(538, 'Must issue a STARTTLS command first'));
        if (auth.username === user && auth.password === pass) return cb(null, { user: auth.username });
        return cb(fail(535, '5.7.8 Authentication credentials invalid'));
    },
    onRcptTo(address, session, cb) {
        const addr = String(address.address || '');
        const local = addr.split('@')[0].toLowerCase();
        const helo = session.hostNameAppearsAs || '';
        fs.appendFileSync(path.join(outdir, 'rcpt.log'), helo + ' ' + addr + '\n');
        if (heloCheck === 'helo-rcpt' && !helo.includes('.')) return cb(fail(504, heloRejected(helo)));
        for (const [prefix, code, text] of replies)
            if (local.startsWith(prefix)) return cb(fail(code, text.replace('%s', addr)));
        return cb();
    },
    onData(stream, session, cb) {
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', () => {
            if (stream.sizeExceeded) return cb(fail(552, '5.3.4 message too big'));
            const k = ++n;
            const id = 'q' + crypto.randomBytes(6).toString('hex');
            const env = {
                id,
                mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
                rcptTo: session.envelope.rcptTo.map((r) => r.address),
                user: session.user || null,
                secure: !!session.secure,
                helo: session.hostNameAppearsAs || null,
            };
            fs.writeFileSync(path.join(outdir, k + '.eml'), Buffer.concat(chunks));
            fs.writeFileSync(path.join(outdir, k + '.json'), JSON.stringify(env) + '\n');
            cb(null, 'Message queued as ' + id);
        });
    },
});
server.on('error', (e) => console.error('smtp-peer error:', e.message));
server.listen(Number(port), '127.0.0.1', () => console.log('smtp-peer listening on ' + port));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
