import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeAccountSources, parseConfig, requireAccount } from '../../src/cli/config.ts';
import { isPopgateError } from '../../src/errors.ts';

const sample = `
[accounts.work]
provider = "microsoft"
user = "me@example.com"
client_id = "abc"
scopes = ["https://outlook.office.com/POP.AccessAsUser.All", "offline_access"]
to = "maildir:/home/me/Mail/work"
delete = true
port = 995

[server]
listen = ["pop3s://127.0.0.1:9950"]
`;

test('a valid config file becomes frozen accounts with defaults applied', () => {
  const config = parseConfig(sample, 'config.toml');
  const work = requireAccount(config, 'work');
  assert.equal(work.provider, 'microsoft');
  assert.equal(work.clientId, 'abc');
  assert.equal(work.delete, true);
  assert.equal(work.tls, 'implicit');
  assert.equal(work.allowInsecureHttp, false);
  assert.ok(Object.isFrozen(work));
  assert.deepEqual(config.server, { listen: ['pop3s://127.0.0.1:9950'] });
});

test('an unknown account key is an error that names the key and suggests the right one', () => {
  assert.throws(
    () => parseConfig('[accounts.a]\nuser = "u"\nclient_ld = "x"\n', 'c.toml'),
    (err: unknown) =>
      isPopgateError(err, 'ERR_CONFIG_UNKNOWN_KEY') &&
      /client_ld/.test(err.message) &&
      /client_id/.test(err.message),
  );
});

test('an unknown top-level key is refused', () => {
  assert.throws(
    () => parseConfig('colour = "red"\n', 'c.toml'),
    (err: unknown) => isPopgateError(err, 'ERR_CONFIG_UNKNOWN_KEY'),
  );
});

test('a wrong type names the key and the expected type', () => {
  assert.throws(
    () => parseConfig('[accounts.a]\nuser = "u"\nport = 70000\n', 'c.toml'),
    (err: unknown) => isPopgateError(err, 'ERR_CONFIG_INVALID') && /port/.test(err.message),
  );
  assert.throws(
    () => parseConfig('[accounts.a]\nuser = "u"\ntls = "sometimes"\n', 'c.toml'),
    (err: unknown) => isPopgateError(err, 'ERR_CONFIG_INVALID') && /implicit, starttls/.test(err.message),
  );
});

test('an account without a user is a missing-value error', () => {
  assert.throws(
    () => parseConfig('[accounts.a]\nhost = "h"\n', 'c.toml'),
    (err: unknown) => isPopgateError(err, 'ERR_CONFIG_MISSING'),
  );
});

test('asking for an unconfigured account lists the configured ones', () => {
  const config = parseConfig(sample, 'config.toml');
  assert.throws(
    () => requireAccount(config, 'home'),
    (err: unknown) => isPopgateError(err, 'ERR_CONFIG_ACCOUNT_UNKNOWN') && /work/.test(err.message),
  );
});

test('flags override env vars, which override the file', () => {
  const config = parseConfig(sample, 'config.toml');
  const merged = mergeAccountSources(
    'work',
    config.accounts.get('work'),
    { POPGATE_HOST: 'env.example', POPGATE_PORT: '1995' },
    { port: 2995 },
  );
  assert.equal(merged.host, 'env.example');
  assert.equal(merged.port, 2995);
  assert.equal(merged.clientId, 'abc');
});
