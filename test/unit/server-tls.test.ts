import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createPop3Server } from '../../src/server/server.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { requirePeer } from '../helpers/peers.ts';
import { MemoryStore, TableValidator, WireClient, xoauth2 } from './server-helpers.ts';

async function tlsServer(t: import('node:test').TestContext) {
  const certs = await createTestCerts(t);
  const dir = certs.dir;
  const certFile = join(dir, 'live.crt');
  const keyFile = join(dir, 'live.key');
  await copyFile(certs.server.certPath, certFile);
  await copyFile(certs.server.keyPath, keyFile);
  const store = new MemoryStore();
  store.add('alice@example.test', 'Subject: s\r\n\r\nbody\r\n');
  const validator = new TableValidator();
  validator.tokens.set('tok-alice', { user: 'alice@example.test' });
  const server = createPop3Server({
    listen: ['pop3s://127.0.0.1:0', 'pop3://127.0.0.1:0'],
    tls: { certFile, keyFile },
    validator,
    store,
    limits: { failedLoginDelayMs: 0 },
  });
  const [implicit, starttls] = await server.listen();
  t.after(() => server.close({ graceMs: 0 }));
  return { certs, server, implicit: implicit!, starttls: starttls!, certFile, keyFile, store };
}

/** Upgrades a WireClient's plain socket after +OK to STLS; returns a client on the TLS socket. */
async function upgrade(c: WireClient, ca: string): Promise<WireClient> {
  c.socket.removeAllListeners('data');
  const secure = tlsConnect({ socket: c.socket, ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  return new WireClient(secure);
}

describe('TLS listeners', () => {
  it('serves implicit TLS and STLS at once', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { certs, implicit, starttls } = await tlsServer(t);
    assert.equal(implicit.kind, 'implicit');
    assert.equal(starttls.kind, 'starttls');
    const a = await WireClient.connect(implicit.port, { tls: { ca: certs.caCertPem } });
    assert.match(await a.line(), /^\+OK/);
    assert.match(await a.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`), /^\+OK/);
    a.close();
    const b = await WireClient.connect(starttls.port);
    assert.match(await b.line(), /^\+OK/);
    assert.match(await b.command('STLS'), /^\+OK/);
    const secure = await upgrade(b, certs.caCertPem);
    assert.match(await secure.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`), /^\+OK/);
    secure.close();
  });

  it('CAPA is truthful: STLS and no SASL before TLS, SASL and no STLS after', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { certs, starttls } = await tlsServer(t);
    const c = await WireClient.connect(starttls.port);
    await c.line();
    const [, before] = await c.multi('CAPA');
    assert.ok(before.includes('STLS'));
    assert.ok(!before.some((l) => l.startsWith('SASL')));
    assert.ok(!before.includes('USER'));
    for (const cap of [
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'PIPELINING',
      'EXPIRE NEVER',
      'IMPLEMENTATION popgate',
    ]) {
      assert.ok(before.includes(cap), cap);
    }
    await c.command('STLS');
    const secure = await upgrade(c, certs.caCertPem);
    const [, after] = await secure.multi('CAPA');
    assert.ok(!after.includes('STLS'));
    assert.ok(after.includes('SASL OAUTHBEARER XOAUTH2'));
    assert.match(await secure.command('STLS'), /^-ERR/);
    await secure.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`);
    const [, inTransaction] = await secure.multi('CAPA');
    assert.ok(!inTransaction.some((l) => l.startsWith('SASL')));
    secure.close();
  });

  it('refuses AUTH before TLS and does not list mechanisms', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { starttls } = await tlsServer(t);
    const c = await WireClient.connect(starttls.port);
    await c.line();
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`),
      /^-ERR \[AUTH\] Plaintext authentication disallowed on non-secure \(SSL\/TLS\) connections\.$/,
    );
    const [status, lines] = await c.multi('AUTH');
    assert.match(status, /^\+OK/);
    assert.deepEqual(lines, []);
    c.close();
  });

  it('drops plaintext pipelined after STLS instead of running it', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { certs, starttls } = await tlsServer(t);
    const c = await WireClient.connect(starttls.port);
    await c.line();
    // An attacker-injected command travelling in the same packet as STLS.
    c.write('STLS\r\nCAPA\r\n');
    assert.match(await c.line(), /^\+OK/);
    const secure = await upgrade(c, certs.caCertPem);
    assert.match(
      await secure.command('NOOP'),
      /^-ERR .*AUTHORIZATION/,
      'the first answer is to NOOP, not CAPA',
    );
    secure.close();
  });

  it('a client that sends bytes instead of a TLS handshake after STLS is disconnected', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { starttls } = await tlsServer(t);
    const c = await WireClient.connect(starttls.port);
    await c.line();
    assert.match(await c.command('STLS'), /^\+OK/);
    c.write('CAPA\r\n');
    await c.waitClosed();
  });

  it('reloads the certificate without dropping a live session', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { certs, server, implicit, certFile, keyFile } = await tlsServer(t);
    const live = await WireClient.connect(implicit.port, { tls: { ca: certs.caCertPem } });
    await live.line();
    await live.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`);
    const first = new X509Certificate((live.socket as TLSSocket).getPeerCertificate().raw).serialNumber;
    const next = await certs.ca.issue('server2');
    await copyFile(next.certPath, certFile);
    await copyFile(next.keyPath, keyFile);
    await server.reloadTls();
    assert.match(await live.command('STAT'), /^\+OK 1 /, 'the old session continues');
    const fresh = await WireClient.connect(implicit.port, { tls: { ca: certs.caCertPem } });
    const second = new X509Certificate((fresh.socket as TLSSocket).getPeerCertificate().raw).serialNumber;
    assert.notEqual(first, second);
    assert.equal(second, new X509Certificate(next.certPem).serialNumber);
    live.close();
    fresh.close();
  });

  it('keeps the old certificate when the reloaded files are broken', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { certs, server, implicit, keyFile } = await tlsServer(t);
    const other = await certs.ca.issue('other');
    await copyFile(other.keyPath, keyFile); // key no longer matches the certificate
    await assert.rejects(server.reloadTls(), { code: 'ERR_SERVER_TLS' });
    const c = await WireClient.connect(implicit.port, { tls: { ca: certs.caCertPem } });
    assert.match(await c.line(), /^\+OK/);
    c.close();
  });

  it('refuses to start when the certificate file is missing', async () => {
    const server = createPop3Server({
      listen: ['pop3s://127.0.0.1:0'],
      tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' },
      validator: new TableValidator(),
      store: new MemoryStore(),
    });
    await assert.rejects(server.listen(), { code: 'ERR_SERVER_TLS' });
  });
});
