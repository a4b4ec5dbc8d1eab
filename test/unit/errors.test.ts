import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, OAuthError, PopgateError } from '../../src/errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

test('every error code in the source is documented in docs/errors.md', () => {
  const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});

test('docs/errors.md documents no code that the source does not define', () => {
  const documented = [...doc.matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]);
  const unknown = documented.filter((code) => code !== undefined && !(code in ERROR_CODES));
  assert.deepEqual(unknown, []);
});

test('an error keeps its cause off enumerable fields so serialisers cannot leak it', () => {
  const err = new OAuthError('ERR_OAUTH_TRANSIENT', 'token endpoint answered 503; retrying', {
    cause: new Error('body: {"refresh_token":"secret-value"}'),
    status: 503,
  });
  assert.ok(err instanceof PopgateError);
  assert.equal(err.code, 'ERR_OAUTH_TRANSIENT');
  assert.ok(!JSON.stringify(err).includes('secret-value'));
  assert.ok(!Object.keys(err).includes('cause'));
});
