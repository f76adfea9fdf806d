#!/usr/bin/env node
// A loopback SMTP peer for outreach's provider tests (smtp-server 3.21.6).
//
//   node smtp-peer.js PORT CERT KEY USER PASS OUTDIR
//
// Listens on 127.0.0.1:PORT; STARTTLS with CERT/KEY; AUTH PLAIN or LOGIN is
// offered and accepted only after STARTTLS (before it: 538), and required
// before MAIL (530).  Each accepted message is saved as OUTDIR/N.eml with
// OUTDIR/N.json beside it ({"id", "mailFrom", "rcptTo": [...], "user"}).
// Recipients whose local part starts with "reject" get
// "550 5.1.1 no such user"; "throttle" gets SES's
// "454 Throttling failure: Maximum sending rate exceeded.".  DATA is answered
// "250 Message queued as <id>".  Prints "smtp-peer listening on PORT" once ready.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { SMTPServer } = require('smtp-server');

const [port, certFile, keyFile, user, pass, outdir] = process.argv.slice(2);
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

const server = new SMTPServer({
    secure: false,
    key: fs.readFileSync(keyFile),
    cert: fs.readFileSync(certFile),
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    authOptional: false,
    logger: false,
    size: 50 * 1024 * 1024,
    onAuth(auth, session, cb) {
        if (!session.secure) return cb(fail(538, 'Must issue a STARTTLS command first'));
        if (auth.username === user && auth.password === pass) return cb(null, { user: auth.username });
        return cb(fail(535, '5.7.8 Authentication credentials invalid'));
    },
    onRcptTo(address, session, cb) {
        const local = String(address.address || '').split('@')[0].toLowerCase();
        if (local.startsWith('reject')) return cb(fail(550, '5.1.1 no such user'));
        if (local.startsWith('throttle')) return cb(fail(454, 'Throttling failure: Maximum sending rate exceeded.'));
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
