// The one place CLI commands get an account's token (src/cli/tokens.ts): a token_command, a
// token_file, or popgate's own encrypted store. Imported on its own, with no other CLI module
// loaded first: fetch, doctor and the proxy depend on nothing being wired up behind their backs.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { mergeAccountSources } from '../../src/cli/config.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { resolvePaths } from '../../src/cli/paths.ts';
import { accountOptionsFor, openTokens, tokenProviderFor, tokenSourceOf } from '../../src/cli/tokens.ts';
import { resolveAccount } from '../../src/oauth/account.ts';

async function cliContext(t: { after(fn: () => Promise<void>): void }) {
  const home = await mkdtemp(join(tmpdir(), 'popgate-cli-tokens-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const env = { HOME: home, POPGATE_PASSPHRASE: 'correct horse battery staple, for a test only' };
  const ctx: CliContext = {
    env,
    paths: resolvePaths(env),
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: new PassThrough(),
    exitCode: 0,
  };
  return { home, ctx };
}

const oauthAccount = (env: NodeJS.ProcessEnv, extra: Record<string, unknown> = {}) =>
  mergeAccountSources('work', undefined, env, {
    provider: 'custom',
    host: 'pop.example.test',
    user: 'user@example.test',
    clientId: 'popgate-test-client',
    authorizationEndpoint: 'https://idp.example.test/authorize',
    tokenEndpoint: 'https://idp.example.test/token',
    ...extra,
  });

test('an account without token_command or token_file gets the token stored by login', async (t) => {
  const { ctx } = await cliContext(t);
  const account = oauthAccount(ctx.env);
  assert.equal(tokenSourceOf(account), 'manager');
  const { manager } = await openTokens(ctx, account);
  const resolved = await resolveAccount(await accountOptionsFor(account, ctx));
  const now = Date.now();
  await manager.saveLogin(
    resolved,
    {
      accessToken: 'stored-access-token-for-cli-tokens-test',
      tokenType: 'bearer',
      expiresAt: now + 3_600_000,
      refreshToken: undefined,
      scopes: ['pop3'],
      obtainedAt: now,
    },
    'device',
  );
  const provider = await tokenProviderFor(account, ctx);
  assert.equal(await provider({ forceRefresh: false }), 'stored-access-token-for-cli-tokens-test');
});

test('token_file is read with ~ expanded, and token_command runs the command', async (t) => {
  const { home, ctx } = await cliContext(t);
  await writeFile(join(home, 'token.txt'), 'token-from-the-file\n', { mode: 0o600 });
  const fromFile = oauthAccount(ctx.env, { tokenFile: '~/token.txt' });
  assert.equal(tokenSourceOf(fromFile), 'file');
  assert.equal(await (await tokenProviderFor(fromFile, ctx))({ forceRefresh: false }), 'token-from-the-file');
  const fromCommand = oauthAccount(ctx.env, { tokenCommand: 'echo token-from-the-command' });
  assert.equal(tokenSourceOf(fromCommand), 'command');
  assert.equal(
    await (await tokenProviderFor(fromCommand, ctx))({ forceRefresh: false }),
    'token-from-the-command',
  );
});
