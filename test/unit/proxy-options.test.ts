// The proxy's rules that need no real peer: listeners without local TLS only on loopback, the
// self-signed certificate popgate makes, the truthful CAPA, the per-account upstream limit, and
// a session that ends without QUIT never sending QUIT upstream (nothing deleted).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import { createPop3Proxy, type Pop3Proxy } from '../../src/proxy/index.ts';
import { buildSelfSigned, ensureSelfSigned } from '../../src/proxy/self-signed.ts';
import { type FakePop3Server, maildropScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';
import { popgate, proxyHome } from '../helpers/proxy.ts';
import { WireClient } from './server-helpers.ts';

const account = (port = 1) => ({
  name: 'work',
  localUser: 'me@example.test',
  token: async () => 'token',
  upstream: { host: '127.0.0.1', port, tls: 'none-loopback-insecure' as const, user: 'me@example.test' },
});
const checkPassword = async (_account: string, password: string) =>
  password === 'right' ? { id: 'test', label: 'test' } : undefined;

test('a non-loopback listener without local TLS refuses to start, saying why', () => {
  assert.throws(
    () => createPop3Proxy({ listen: ['pop3://0.0.0.0:1110'], accounts: [account()], checkPassword }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_PROXY_CONFIG');
      assert.match(
        error.message,
        /refusing to listen on 0\.0\.0\.0 without local TLS: app passwords would cross the network/,
      );
      return true;
    },
  );
  assert.throws(
    () => createPop3Proxy({ listen: ['pop3s://127.0.0.1:1995'], accounts: [account()], checkPassword }),
    { code: 'ERR_PROXY_CONFIG' },
  );
});

test('popgate proxy on a non-loopback address without TLS exits 78 naming the fix', async (t) => {
  const home = await proxyHome(
    '[proxy]\nself_signed = false\n[accounts.work]\nuser = "me@example.test"\nhost = "127.0.0.1"\ntoken_file = "/nonexistent"\n',
  );
  t.after(() => home.cleanup());
  const r = await popgate(home, ['proxy', '--listen', 'pop3://0.0.0.0:0']);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /without local TLS.*tls_cert and tls_key.*\(ERR_PROXY_CONFIG\)/);
});

test('two accounts answering to the same login name are refused', () => {
  assert.throws(
    () =>
      createPop3Proxy({
        listen: ['pop3://127.0.0.1:0'],
        accounts: [account(), { ...account(), name: 'other', localUser: 'ME@example.test' }],
        checkPassword,
      }),
    /both answer to the login name/,
  );
});

test('the self-signed certificate verifies for localhost, 127.0.0.1 and ::1 and is reused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-selfsigned-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const names = ['localhost', '127.0.0.1', '::1', 'mail.example.test'];
  const first = await ensureSelfSigned(join(dir, 'tls'), names);
  assert.equal(first.created, true);
  assert.equal((await stat(first.keyFile)).mode & 0o777, 0o600);
  const again = await ensureSelfSigned(join(dir, 'tls'), names);
  assert.deepEqual([again.created, again.fingerprint], [false, first.fingerprint]);
  const { readFile } = await import('node:fs/promises');
  const certPem = await readFile(first.certFile, 'utf8');
  const cert = new X509Certificate(certPem);
  assert.ok(cert.verify(cert.publicKey), 'self-signed');
  assert.equal(cert.checkHost('mail.example.test'), 'mail.example.test');
  assert.equal(cert.checkIP('::1'), '::1');
  // A real handshake trusting only this certificate, as a mail client that imported it does.
  const server = createServer({ cert: certPem, key: await readFile(first.keyFile) }, (s) => s.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: certPem, servername: 'localhost' }, () => {});
    let out = '';
    socket.on('data', (c) => (out += c));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
  assert.equal(text, 'ok');
  // OpenSSL reads it too (the fingerprint users compare is the one popgate prints).
  const openssl = await new Promise<string>((resolve) =>
    execFile('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', first.certFile], (_e, out) =>
      resolve(out),
    ),
  );
  if (openssl) assert.match(openssl, new RegExp(first.fingerprint));
  assert.ok(buildSelfSigned(['localhost']).cert.startsWith('-----BEGIN CERTIFICATE-----\n'));
});

async function withProxy(
  t: { after(fn: () => Promise<void>): void },
  options: { maxPerAccount?: number; plaintextLoopback?: boolean } = {},
): Promise<{ proxy: Pop3Proxy; port: number; upstream: FakePop3Server }> {
  const upstream = await startFakePop3Server({
    script: maildropScript({ messages: ['Subject: a\r\n\r\nbody\r\n'], capa: ['UIDL', 'SASL XOAUTH2'] }),
  });
  const proxy = createPop3Proxy({
    listen: ['pop3://127.0.0.1:0'],
    accounts: [account(upstream.port)],
    checkPassword,
    plaintextLoopback: options.plaintextLoopback ?? true,
    limits: { maxConnectionsPerAccount: options.maxPerAccount ?? 4, failedLoginDelayMs: 0 },
  });
  const [address] = await proxy.listen();
  t.after(async () => {
    await proxy.close({ graceMs: 0 });
    await upstream.close();
  });
  return { proxy, port: address!.port, upstream };
}

test('CAPA is the proxy’s own: USER, SASL PLAIN and PIPELINING on loopback, no STLS without TLS', async (t) => {
  const { port } = await withProxy(t);
  const c = await WireClient.connect(port);
  await c.line();
  const [, caps] = await c.multi('CAPA');
  assert.ok(caps.includes('USER') && caps.includes('SASL PLAIN') && caps.includes('PIPELINING'));
  assert.ok(!caps.includes('STLS'));
  assert.ok(!caps.some((l) => /XOAUTH2/.test(l)), 'never the upstream’s mechanisms');
  c.close();
});

test('with plaintext_loopback off, no credentials are taken without TLS', async (t) => {
  const { port } = await withProxy(t, { plaintextLoopback: false });
  const c = await WireClient.connect(port);
  await c.line();
  const [, caps] = await c.multi('CAPA');
  assert.ok(!caps.includes('USER') && !caps.some((l) => l.startsWith('SASL')));
  assert.match(await c.command('USER me@example.test'), /^-ERR \[AUTH\] popgate: log in over TLS/);
  assert.match(await c.command('AUTH PLAIN AG1lQGV4YW1wbGUudGVzdAByaWdodA=='), /^-ERR \[AUTH\]/);
  c.close();
});

test('the per-account upstream limit answers [IN-USE] and frees the slot when a session ends', async (t) => {
  const { port } = await withProxy(t, { maxPerAccount: 1 });
  const a = await WireClient.connect(port);
  await a.line();
  await a.command('USER me@example.test');
  assert.match(await a.command('PASS right'), /^\+OK/);
  const b = await WireClient.connect(port);
  await b.line();
  // AUTH PLAIN inline: "\0me@example.test\0right".
  const plain = Buffer.from('\0me@example.test\0right').toString('base64');
  assert.match(
    await b.command(`AUTH PLAIN ${plain}`),
    /^-ERR \[IN-USE\] popgate: account work has the most upstream sessions/,
  );
  assert.match(await a.command('QUIT'), /^\+OK/);
  await a.waitClosed();
  // The slot is returned once the first session has ended.
  let answer = '';
  for (let i = 0; i < 50 && !answer.startsWith('+OK'); i++) {
    answer = await b.command(`AUTH PLAIN ${plain}`);
  }
  assert.match(answer, /^\+OK/);
  b.close();
});

test('a dropped session closes the upstream without QUIT, so nothing is deleted', async (t) => {
  const { proxy, port, upstream } = await withProxy(t);
  const c = await WireClient.connect(port);
  await c.line();
  await c.command('USER me@example.test');
  assert.match(await c.command('PASS right'), /^\+OK/);
  assert.match(await c.command('DELE 1'), /^\+OK/);
  c.close();
  // The session has ended (and closed its upstream) once the proxy counts no session.
  const deadline = Date.now() + 10_000;
  while (proxy.sessionCount > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(proxy.sessionCount, 0);
  assert.ok(upstream.received.includes('plain:DELE 1'));
  assert.ok(!upstream.received.includes('plain:QUIT'));
});
