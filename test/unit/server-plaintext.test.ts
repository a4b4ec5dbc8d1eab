// Plaintext credentials (SASL, USER/PASS and their CAPA advertisement) only from a loopback peer
// on a loopback listener with allowPlaintextLoopback; everyone else must STLS first, whatever
// else is configured. The rule is a pure function (every combination below), plus wire tests
// over a real non-loopback address of this machine: with a certificate, plaintext allowed and
// a listener on 0.0.0.0, neither a remote peer nor a loopback one may authenticate before TLS.
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { PLAINTEXT_DISALLOWED, plaintextCredentialsAllowed } from '../../src/server/plaintext-policy.ts';
import { createPop3Server } from '../../src/server/server.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { requireNonLoopbackAddress, requirePeer } from '../helpers/peers.ts';
import { MemoryStore, TableValidator, WireClient, xoauth2 } from './server-helpers.ts';

const USER = 'alice@example.test';
const REFUSED = `-ERR [AUTH] ${PLAINTEXT_DISALLOWED}`;

describe('plaintextCredentialsAllowed', () => {
  const allowed = (listenerHost: string, peerAddress: string | undefined, allowPlaintextLoopback = true) =>
    plaintextCredentialsAllowed({ allowPlaintextLoopback, listenerHost, peerAddress });

  it('allows a loopback peer on a loopback listener when plaintext on loopback is allowed', () => {
    assert.equal(allowed('127.0.0.1', '127.0.0.1'), true);
    assert.equal(allowed('127.0.0.1', '::ffff:127.0.0.1'), true);
    assert.equal(allowed('::1', '::1'), true);
    assert.equal(allowed('localhost', '127.0.0.1'), true);
    assert.equal(allowed('127.0.0.2', '127.0.0.5'), true);
  });

  it('refuses everyone when plaintext on loopback is not allowed', () => {
    assert.equal(allowed('127.0.0.1', '127.0.0.1', false), false);
    assert.equal(allowed('::1', '::1', false), false);
  });

  it('refuses a loopback peer on a listener that is not loopback', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.2', 'mail.example.test', 'localhost.']) {
      assert.equal(allowed(host, '127.0.0.1'), false, host);
      assert.equal(allowed(host, '::1'), false, host);
    }
  });

  it('refuses a peer that is not loopback, and a peer the kernel did not report', () => {
    for (const peer of ['192.0.2.7', '::ffff:192.0.2.7', 'fd00::2', '10.0.0.1', 'localhost', '', undefined]) {
      assert.equal(allowed('127.0.0.1', peer), false, String(peer));
      assert.equal(allowed('0.0.0.0', peer), false, String(peer));
    }
  });
});

/** A server with a certificate, plaintext allowed on loopback, a USER backend, on 0.0.0.0. */
async function reachableServer(t: TestContext) {
  const certs = await createTestCerts(t);
  const store = new MemoryStore();
  store.add(USER, 'Subject: s\r\n\r\nbody\r\n');
  const validator = new TableValidator();
  validator.tokens.set('tok-alice', { user: USER });
  const server = createPop3Server({
    listen: ['pop3://0.0.0.0:0'],
    tls: { cert: certs.server.certPem, key: certs.server.keyPem },
    allowPlaintextLoopback: true,
    passwordBackend: { verify: async () => true },
    validator,
    store,
    limits: { failedLoginDelayMs: 0 },
  });
  const [listener] = await server.listen();
  t.after(() => server.close({ graceMs: 0 }));
  return { certs, validator, port: listener!.port };
}

async function dial(t: TestContext, host: string, port: number): Promise<WireClient> {
  const socket = netConnect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const c = new WireClient(socket);
  t.after(() => c.close());
  assert.match(await c.line(), /^\+OK/);
  return c;
}

/** Asserts the connection is offered STLS and nothing that carries credentials, and refused them. */
async function assertPlaintextRefused(c: WireClient, validator: TableValidator): Promise<void> {
  const [status, caps] = await c.multi('CAPA');
  assert.match(status, /^\+OK/);
  assert.ok(caps.includes('STLS'), caps.join('|'));
  assert.ok(!caps.some((l) => l.startsWith('SASL') || l === 'USER'), caps.join('|'));
  const [listing, mechanisms] = await c.multi('AUTH');
  assert.match(listing, /^\+OK/);
  assert.deepEqual(mechanisms, []);
  assert.equal(await c.command(`AUTH XOAUTH2 ${xoauth2(USER, 'tok-alice')}`), REFUSED);
  assert.equal(await c.command('AUTH OAUTHBEARER'), REFUSED);
  assert.equal(await c.command(`USER ${USER}`), REFUSED);
  assert.equal(await c.command('PASS secret'), REFUSED);
  assert.equal(validator.calls, 0, 'no token reached the validator before TLS');
}

describe('plaintext credentials on the wire', () => {
  it('a peer that is not loopback sees STLS and no SASL, is refused AUTH and USER, and logs in after STLS', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const address = requireNonLoopbackAddress(t);
    if (address === undefined) return;
    const { certs, validator, port } = await reachableServer(t);
    const c = await dial(t, address, port);
    assert.equal(c.socket.localAddress, address, 'the server sees a peer that is not loopback');
    await assertPlaintextRefused(c, validator);
    assert.match(await c.command('STLS'), /^\+OK/);
    c.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: c.socket, ca: certs.caCertPem, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    const s = new WireClient(secure);
    const [, caps] = await s.multi('CAPA');
    assert.ok(caps.includes('SASL OAUTHBEARER XOAUTH2') && caps.includes('USER'), caps.join('|'));
    assert.match(await s.command(`AUTH XOAUTH2 ${xoauth2(USER, 'tok-alice')}`), /^\+OK/);
    s.close();
  });

  it('a loopback peer on a listener that is not loopback must STLS first too', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const { validator, port } = await reachableServer(t);
    const c = await dial(t, '127.0.0.1', port);
    assert.equal(c.socket.localAddress, '127.0.0.1');
    await assertPlaintextRefused(c, validator);
  });
});
