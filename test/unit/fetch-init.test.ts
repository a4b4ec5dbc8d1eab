import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { parseConfig } from '../../src/cli/config.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { main } from '../../src/cli/main.ts';
import { resolvePaths } from '../../src/cli/paths.ts';

async function context(t: {
  after(fn: () => Promise<void>): void;
}): Promise<CliContext & { out: () => string; err: () => string }> {
  const home = await mkdtemp(join(tmpdir(), 'popgate-init-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), XDG_STATE_HOME: join(home, 'state') };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return {
    env,
    paths: resolvePaths(env),
    stdout,
    stderr,
    stdin: new PassThrough(),
    exitCode: 0,
    out: () => out,
    err: () => err,
  };
}

test('init writes a config (mode 0600) that loads, with the preset and the answers from flags', async (t) => {
  const ctx = await context(t);
  const code = await main(
    [
      'init',
      '--account',
      'work',
      '--provider',
      'google',
      '--user',
      'me@example.com',
      '--client-id',
      'abc.apps',
      '--to',
      '~/Mail',
    ],
    ctx,
  );
  assert.equal(code, 0, ctx.err());
  const text = await readFile(ctx.paths.configFile, 'utf8');
  const config = parseConfig(text, ctx.paths.configFile);
  const account = config.accounts.get('work');
  assert.equal(account?.provider, 'google');
  assert.equal(account?.user, 'me@example.com');
  assert.equal(account?.clientId, 'abc.apps');
  assert.equal(account?.to, 'maildir:~/Mail');
  assert.equal((await stat(ctx.paths.configFile)).mode & 0o777, 0o600);
  // With one account configured, login, doctor and fetch need no --account.
  assert.match(ctx.out(), /next: popgate login, then popgate doctor and popgate fetch\n/);
});

test('accounts add appends a second account and refuses a duplicate name', async (t) => {
  const ctx = await context(t);
  assert.equal(
    await main(
      ['init', '--account', 'a', '--provider', 'fastmail', '--user', 'a@x.test', '--client-id', 'c'],
      ctx,
    ),
    0,
  );
  const args = [
    'accounts',
    'add',
    '--account',
    'b',
    '--provider',
    'custom',
    '--user',
    'b@x.test',
    '--token-command',
    'pass show tok',
  ];
  assert.equal(await main([...args, '--host', 'pop.x.test', '--port', '995'], ctx), 0, ctx.err());
  // Two accounts now: the hints name the new one.
  assert.match(ctx.out(), /next: popgate doctor --account b, then popgate fetch --account b\n/);
  const config = parseConfig(await readFile(ctx.paths.configFile, 'utf8'), 'c');
  assert.deepEqual([...config.accounts.keys()], ['a', 'b']);
  assert.equal(config.accounts.get('b')?.tokenCommand, 'pass show tok');
  assert.equal(await main([...args, '--account', 'a'], ctx), 78);
  assert.match(ctx.err(), /already has an account "a"/);
});

test('init without a terminal names the missing answer and writes nothing', async (t) => {
  const ctx = await context(t);
  assert.equal(await main(['init', '--account', 'w', '--provider', 'google'], ctx), 78);
  assert.match(ctx.err(), /"user" is needed: pass --user/);
  await assert.rejects(stat(ctx.paths.configFile), { code: 'ENOENT' });
});

test('init without a terminal refuses a bad flag value naming the flag, with one phrasing per fault, and writes nothing', async (t) => {
  const ctx = await context(t);
  const base = ['init', '--account', 'w', '--provider', 'custom', '--user', 'w@x.test', '--client-id', 'c'];
  const custom = [...base, '--issuer', 'https://as.x.test', '--host', 'pop.x.test'];
  assert.equal(await main([...custom, '--port', 'abc'], ctx), 78);
  assert.equal(await main([...custom, '--port', '99999'], ctx), 78);
  assert.equal(ctx.err().split('--port: "port" must be a port from 1 to 65535').length - 1, 2, ctx.err());
  assert.equal(await main([...base, '--issuer', 'not a url', '--host', 'h'], ctx), 78);
  assert.match(ctx.err(), /--issuer: the issuer is not a valid URL/);
  assert.equal(await main([...base, '--issuer', 'http://127.0.0.1:9', '--host', 'h'], ctx), 78);
  assert.match(
    ctx.err(),
    /--issuer: the issuer http:\/\/127\.0\.0\.1:9 is plain http: allowed only on loopback with --allow-insecure-http/,
  );
  assert.equal(await main([...custom, '--ca', join(ctx.env.HOME as string, 'none.pem')], ctx), 78);
  assert.match(ctx.err(), /--ca: cannot read the CA file .*none\.pem \(ENOENT\)/);
  assert.equal(await main([...custom, '--provider', 'gogle'], ctx), 78);
  assert.match(ctx.err(), /--provider: "provider" must be one of .* \(did you mean "google"\?\)/);
  await assert.rejects(stat(ctx.paths.configFile), { code: 'ENOENT' });
  assert.equal(
    await main([...base, '--issuer', 'http://127.0.0.1:9', '--allow-insecure-http', '--host', 'h'], ctx),
    0,
    ctx.err(),
  );
  const account = parseConfig(await readFile(ctx.paths.configFile, 'utf8'), 'c').accounts.get('w');
  assert.equal(account?.allowInsecureHttp, true);
  assert.equal(account?.port, 995);
});
