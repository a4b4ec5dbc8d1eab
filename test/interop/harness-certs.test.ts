import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import { isPopgateError } from '../../src/errors.ts';
import { checkServerIdentityStrict } from '../../src/internal/tls-identity.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { requirePeer } from '../helpers/peers.ts';

async function handshake(
  host: string,
  servername: string | undefined,
  ca: string,
  cert: string,
  key: string,
) {
  const server = createServer({ cert, key }, (socket) => socket.end('hello\r\n'));
  server.listen(0, host.includes(':') ? '::1' : '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    // popgate's identity check (Node 22.23's own refuses ::1 against an IP:::1 SAN: nodejs/node#64144).
    const socket = connect({
      host,
      port,
      ca,
      checkServerIdentity: checkServerIdentityStrict,
      ...(servername ? { servername } : {}),
    });
    const err = await new Promise<Error | undefined>((resolve) => {
      socket.once('secureConnect', () => resolve(undefined));
      socket.once('error', resolve);
    });
    socket.destroy();
    return err;
  } finally {
    server.close();
  }
}

test('the dev CA issues a certificate that verifies for localhost, 127.0.0.1 and ::1', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const certs = await createTestCerts(t);
  const { certPem, keyPem } = certs.server;
  assert.equal(await handshake('127.0.0.1', undefined, certs.caCertPem, certPem, keyPem), undefined);
  assert.equal(await handshake('127.0.0.1', 'localhost', certs.caCertPem, certPem, keyPem), undefined);
  assert.equal(await handshake('::1', undefined, certs.caCertPem, certPem, keyPem), undefined);
});

test('a certificate is refused for a host name it does not name', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const certs = await createTestCerts(t);
  const err = await handshake(
    '127.0.0.1',
    'mail.example.test',
    certs.caCertPem,
    certs.server.certPem,
    certs.server.keyPem,
  );
  assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('a certificate is refused by a client that does not trust the CA', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const [a, b] = await Promise.all([createTestCerts(t), createTestCerts(t)]);
  const err = await handshake('127.0.0.1', undefined, b.caCertPem, a.server.certPem, a.server.keyPem);
  assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('keys are written with mode 0600 and certificates are signed with SHA-256 on P-256', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const certs = await createTestCerts(t);
  assert.equal(statSync(certs.server.keyPath).mode & 0o777, 0o600);
  assert.equal(statSync(certs.ca.caKeyPath).mode & 0o777, 0o600);
  const text = execFileSync(openssl, ['x509', '-in', certs.server.certPath, '-noout', '-text'], {
    encoding: 'utf8',
  });
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /NIST CURVE: P-256|prime256v1/);
  const x509 = new X509Certificate(certs.server.certPem);
  assert.equal(x509.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.ok(x509.verify(new X509Certificate(certs.caCertPem).publicKey));
  assert.equal(new X509Certificate(certs.caCertPem).ca, true);
});

test('a subject alternative name that could inject openssl config is refused with a typed error', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const certs = await createTestCerts(t);
  await assert.rejects(certs.ca.issue('evil', ['localhost,DNS:example.com']), (e) =>
    isPopgateError(e, 'ERR_CONFIG_INVALID'),
  );
  await assert.rejects(certs.ca.issue('../escape'), (e) => isPopgateError(e, 'ERR_CONFIG_INVALID'));
});
