// The one loopback rule (src/internal/loopback.ts): plaintext and http:// are allowed only where
// it says yes, so every form a user or a socket can produce is pinned here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isLoopbackHost as clientRule } from '../../src/client/options.ts';
import { isLoopbackAddress, isLoopbackHost } from '../../src/internal/loopback.ts';
import { isLoopbackHost as oauthRule } from '../../src/oauth/http.ts';
import { isLoopbackHost as serverRule } from '../../src/server/options.ts';

const LOOPBACK_HOSTS = [
  '127.0.0.1',
  '127.1.2.3',
  '127.255.255.255',
  '::1',
  '0:0:0:0:0:0:0:1',
  '0::1',
  '[::1]',
  '[0:0:0:0:0:0:0:1]',
  'localhost',
  'LOCALHOST',
  'LocalHost',
];
const REMOTE_HOSTS = [
  '128.0.0.1',
  '126.255.255.255',
  '::2',
  '::',
  '0.0.0.0',
  '',
  'localhost.',
  'foo.localhost',
  'localhost.evil.com',
  '127.0.0.1.evil.com',
  '::ffff:127.0.0.1',
  '[::ffff:127.0.0.1]',
  '::1%lo',
  '[127.0.0.1]',
  '[localhost]',
  '127.1',
  '0127.0.0.1',
  ' 127.0.0.1',
  'localhost ',
];

describe('isLoopbackHost (a host name in configuration)', () => {
  for (const host of LOOPBACK_HOSTS) {
    test(`${JSON.stringify(host)} is loopback`, () => assert.equal(isLoopbackHost(host), true));
  }
  for (const host of REMOTE_HOSTS) {
    test(`${JSON.stringify(host)} is not loopback`, () => assert.equal(isLoopbackHost(host), false));
  }

  test('the client, server and OAuth exports are the one rule', () => {
    assert.equal(clientRule, isLoopbackHost);
    assert.equal(serverRule, isLoopbackHost);
    assert.equal(oauthRule, isLoopbackHost);
  });
});

describe('isLoopbackAddress (a socket peer address)', () => {
  for (const address of [
    '127.0.0.1',
    '127.1.2.3',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:127.9.8.7',
  ]) {
    test(`${address} is loopback`, () => assert.equal(isLoopbackAddress(address), true));
  }
  for (const address of [
    '128.0.0.1',
    '::2',
    '0.0.0.0',
    '::',
    '',
    'localhost',
    '[::1]',
    '::ffff:128.0.0.1',
    '::7f00:1',
    '64:ff9b::7f00:1',
    '::1%lo',
    'foo.localhost',
  ]) {
    test(`${JSON.stringify(address)} is not loopback`, () => assert.equal(isLoopbackAddress(address), false));
  }
});
