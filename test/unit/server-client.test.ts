// popgate's own Pop3Client against popgate's server: STLS and implicit TLS, both mechanisms,
// LIST/UIDL/RETR (sizes checked strictly by the client), DELE and the UPDATE commit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pop3Client } from '../../src/client/index.ts';
import { createPop3Server } from '../../src/server/server.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { requirePeer } from '../helpers/peers.ts';
import { MemoryStore, TableValidator } from './server-helpers.ts';

const USER = 'alice@example.test';

describe('Pop3Client against Pop3Server', () => {
  it('logs in over STLS and implicit TLS, reads everything, deletes at QUIT', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const certs = await createTestCerts(t);
    const store = new MemoryStore();
    store.add(
      USER,
      'Subject: a\r\n\r\none\r\n',
      'Subject: b\r\n\r\n.dot\r\n',
      'Subject: c\r\n\r\nno final newline',
    );
    const validator = new TableValidator();
    validator.tokens.set('tok', { user: USER });
    const server = createPop3Server({
      listen: ['pop3s://127.0.0.1:0', 'pop3://127.0.0.1:0'],
      tls: { cert: certs.server.certPem, key: certs.server.keyPem },
      validator,
      store,
    });
    const [implicit, starttls] = await server.listen();
    t.after(() => server.close({ graceMs: 0 }));

    const a = new Pop3Client({
      host: '127.0.0.1',
      port: starttls!.port,
      tls: 'starttls',
      ca: certs.caCertPem,
      servername: 'localhost',
    });
    await a.connect();
    await a.authenticate({ mechanism: 'OAUTHBEARER', user: USER, token: 'tok' });
    assert.deepEqual((await a.stat()).count, 3);
    const uidl = await a.uidl();
    assert.equal(uidl.length, 3);
    const body = Buffer.concat(await (await a.retrieve(2)).toArray()).toString();
    assert.equal(body, 'Subject: b\r\n\r\n.dot\r\n');
    await a.delete(1);
    await a.quit();
    assert.equal(store.boxes.get(USER)!.length, 2);

    const b = new Pop3Client({
      host: '127.0.0.1',
      port: implicit!.port,
      tls: 'implicit',
      ca: certs.caCertPem,
      servername: 'localhost',
    });
    await b.connect();
    await b.authenticate({ mechanism: 'XOAUTH2', user: USER, token: 'tok' });
    const list = await b.list();
    assert.equal(list.length, 2);
    const last = Buffer.concat(await (await b.retrieve(2)).toArray()).toString();
    assert.equal(last, 'Subject: c\r\n\r\nno final newline\r\n');
    await b.quit();
  });
});
