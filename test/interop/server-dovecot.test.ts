// Dovecot as the reference: for the same Maildir (the mixed fixture set: dots, 8-bit, long
// lines, no final newline, ...), popgate's server and a real Dovecot 2.3 give the same UIDLs and
// the same RETR bytes on the wire, read by the same raw pipelined client.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPop3Server, type Pop3Server } from '../../src/server/server.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { writeMixedMessages } from '../helpers/mail-fixtures.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';
import { pipelinedFetch, rawLogin, TableValidator, xoauth2 } from '../unit/server-helpers.ts';

const USER = 'alice@example.test';
const COUNT = 300;
const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('popgate and Dovecot on the same Maildir', () => {
  let dovecot: DovecotInstance;
  let server: Pop3Server;
  let store: MaildirStore;
  let popgatePort = 0;

  before(async () => {
    // Without Dovecot there is nothing to set up; the test itself skips (or fails under CI).
    if (!peerPath('dovecot')) return;
    dovecot = await startDovecot({ users: [USER] });
    const maildir = await dovecot.maildirOf(USER);
    await writeMixedMessages(maildir, {
      count: COUNT,
      owner: { uid: dovecot.mailUid, gid: dovecot.mailGid },
    });
    const root = join(dovecot.dir, 'popgate-root');
    await mkdir(root);
    await symlink(maildir, join(root, USER));
    store = new MaildirStore(root);
    const validator = new TableValidator();
    validator.tokens.set('tok', { user: USER });
    server = createPop3Server({
      listen: ['pop3://127.0.0.1:0'],
      allowPlaintextLoopback: true,
      validator,
      store,
    });
    popgatePort = (await server.listen())[0]!.port;
  });

  after(async () => {
    await server?.close({ graceMs: 0 });
    await store?.close();
    await dovecot?.stop();
  });

  it('serves the same UIDLs and the same message bytes as Dovecot', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    // Dovecot first: it numbers the messages and writes dovecot-uidlist.
    const token = await dovecot.mintToken(USER);
    const d = await rawLogin(dovecot.popsPort, `AUTH XOAUTH2 ${xoauth2(USER, token)}`, dovecot.caCertPem);
    const fromDovecot = await pipelinedFetch(d, COUNT, { keep: true });
    d.end('QUIT\r\n');
    await new Promise((r) => d.once('close', r));
    const p = await rawLogin(popgatePort, `AUTH XOAUTH2 ${xoauth2(USER, 'tok')}`);
    const fromPopgate = await pipelinedFetch(p, COUNT, { keep: true });
    p.end('QUIT\r\n');
    assert.equal(fromPopgate.uidl.length, COUNT);
    assert.deepEqual(fromPopgate.uidl, fromDovecot.uidl);
    for (let i = 0; i < COUNT; i++) {
      assert.equal(digest(fromPopgate.bodies[i]!), digest(fromDovecot.bodies[i]!), `message ${i + 1}`);
    }
  });
});
