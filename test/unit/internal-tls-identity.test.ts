import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { checkServerIdentityStrict, isIpLiteral, serverNameFor } from '../../src/internal/tls-identity.ts';
import { createTestCerts } from '../helpers/certs.ts';
import { requirePeer } from '../helpers/peers.ts';

test('an IP literal is never the TLS server name; a host name is', () => {
  assert.equal(serverNameFor('::1'), undefined);
  assert.equal(serverNameFor('[::1]'), undefined);
  assert.equal(serverNameFor('fd00::abc'), undefined);
  assert.equal(serverNameFor('::ffff:7f00:1'), undefined);
  assert.equal(serverNameFor('127.0.0.1'), undefined);
  assert.equal(serverNameFor('mail.example.test'), 'mail.example.test');
  assert.equal(isIpLiteral('localhost'), false);
});

test('the identity check matches IPv6 literals in any form against the iPAddress SAN, and nothing else', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const certs = await createTestCerts(t);
  // The dev CA's server certificate names DNS:localhost, IP:127.0.0.1 and IP:::1.
  const cert = new X509Certificate(certs.server.certPem).toLegacyObject();
  for (const host of ['::1', '[::1]', '0:0:0:0:0:0:0:1', '0::1', '127.0.0.1', 'localhost']) {
    assert.equal(checkServerIdentityStrict(host, cert), undefined, host);
  }
  for (const host of ['::2', '127.0.0.2', '::ffff:127.0.0.1', 'fe80::1%lo', 'mail.example.test', '1']) {
    const error = checkServerIdentityStrict(host, cert) as NodeJS.ErrnoException | undefined;
    assert.equal(error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', host);
  }
});
