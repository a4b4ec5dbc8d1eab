import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pop3Client } from '../../src/client/index.ts';
import { isPopgateError } from '../../src/errors.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { DEFAULT_CAPA, maildropScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';

const TOKEN = 'tls-test-token-0123456789';

test('implicit TLS verifies the server against the given CA and logs in', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    implicitTls: true,
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: maildropScript({ messages: ['a\r\n'] }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: '127.0.0.1',
    port: server.port,
    tls: 'implicit',
    ca: certs.caCertPem,
  });
  t.after(() => client.close());
  await client.connect();
  assert.equal(client.secure, true);
  await client.authenticate({ mechanism: 'OAUTHBEARER', user: 'u', token: TOKEN });
  assert.deepEqual(await client.stat(), { count: 1, size: 3 });
  await client.quit();
});

test('implicit TLS to an IPv6 literal sends no server name and verifies the IP against the certificate', async (t) => {
  const certs = await createTestCerts(t);
  const serverNames: (string | false)[] = [];
  const server = await startFakePop3Server({
    implicitTls: true,
    listenHost: '::1',
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: async (session) => {
      serverNames.push(session.servername);
      await maildropScript({ messages: [] })(session);
    },
  });
  t.after(() => server.close());
  const client = new Pop3Client({ host: '::1', port: server.port, tls: 'implicit', ca: certs.caCertPem });
  t.after(() => client.close());
  await client.connect();
  assert.equal(client.secure, true);
  assert.deepEqual(serverNames, [false]);
  await client.quit();
});

test('implicit TLS without the CA fails with ERR_POP3_TLS_UNTRUSTED (there is no switch to ignore it)', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    implicitTls: true,
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: maildropScript({ messages: [] }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({ host: '127.0.0.1', port: server.port, tls: 'implicit' });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_TLS_UNTRUSTED'));
  assert.equal(client.state, 'closed');
});

test('a certificate for another name fails with ERR_POP3_TLS_UNTRUSTED', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    implicitTls: true,
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: maildropScript({ messages: [] }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: '127.0.0.1',
    port: server.port,
    tls: 'implicit',
    ca: certs.caCertPem,
    servername: 'pop.example.com',
  });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_TLS_UNTRUSTED'));
});

test('STLS upgrades, forgets the plaintext CAPA and issues CAPA again over TLS', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: maildropScript({
      messages: ['a\r\n'],
      on: async (verb, _args, s) => {
        if (verb === 'CAPA' && !s.secure) {
          s.write('+OK\r\nSTLS\r\n.\r\n');
          return true;
        }
        if (verb === 'STLS') {
          s.write('+OK begin TLS\r\n');
          await s.startTls();
          return true;
        }
        return false;
      },
    }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: 'localhost',
    port: server.port,
    tls: 'starttls',
    ca: certs.caCertPem,
  });
  t.after(() => client.close());
  await client.connect();
  assert.equal(client.secure, true);
  assert.deepEqual(client.capabilities?.sasl, ['XOAUTH2', 'OAUTHBEARER']);
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: TOKEN });
  assert.deepEqual(server.received.slice(0, 4), ['plain:CAPA', 'plain:STLS', 'tls:CAPA', server.received[3]]);
  assert.ok(server.received[3]?.startsWith('tls:AUTH XOAUTH2 '));
  assert.ok(!server.received.some((l) => l.startsWith('plain:AUTH')));
});

test('bytes injected after +OK to STLS abort with ERR_POP3_STLS_INJECTION and no token is sent', async (t) => {
  const certs = await createTestCerts(t);
  const server = await startFakePop3Server({
    tls: { key: certs.server.keyPem, cert: certs.server.certPem },
    script: maildropScript({
      messages: [],
      on: async (verb, _args, s) => {
        if (verb === 'CAPA') {
          s.write('+OK\r\nSTLS\r\nSASL XOAUTH2\r\n.\r\n');
          return true;
        }
        if (verb === 'STLS') {
          // The classic injection: a forged answer rides in the same segment as +OK.
          s.write('+OK begin TLS\r\n+OK\r\nSASL PLAIN\r\n.\r\n');
          await new Promise((r) => setTimeout(r, 200));
          return true;
        }
        return false;
      },
    }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: 'localhost',
    port: server.port,
    tls: 'starttls',
    ca: certs.caCertPem,
  });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_STLS_INJECTION'));
  assert.equal(client.state, 'closed');
  await assert.rejects(client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: TOKEN }), (e) =>
    isPopgateError(e, 'ERR_POP3_STATE'),
  );
  assert.ok(!server.received.some((l) => l.includes('AUTH')));
});

test('starttls against a server without STLS fails with ERR_POP3_STLS_UNSUPPORTED', async (t) => {
  const server = await startFakePop3Server({ script: maildropScript({ messages: [] }) });
  t.after(() => server.close());
  const client = new Pop3Client({ host: '127.0.0.1', port: server.port, tls: 'starttls' });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_STLS_UNSUPPORTED'));
  assert.ok(!server.received.includes('plain:STLS'));
});

test('a server that refuses STLS fails with ERR_POP3_STLS_UNSUPPORTED', async (t) => {
  const server = await startFakePop3Server({
    script: maildropScript({ messages: [], capa: [...DEFAULT_CAPA, 'STLS'] }),
  });
  t.after(() => server.close());
  const client = new Pop3Client({ host: '127.0.0.1', port: server.port, tls: 'starttls' });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_STLS_UNSUPPORTED'));
});

test('a connection refused is ERR_POP3_CONNECT', async () => {
  const server = await startFakePop3Server({ script: maildropScript({ messages: [] }) });
  const port = server.port;
  await server.close();
  const client = new Pop3Client({ host: '127.0.0.1', port, tls: 'implicit' });
  await assert.rejects(client.connect(), (e) => isPopgateError(e, 'ERR_POP3_CONNECT'));
});
