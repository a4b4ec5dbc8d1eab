// The one place CLI commands get an account's token (src/cli/tokens.ts): a token_command, a
// token_file, or popgate's own encrypted store. Imported on its own, with no other CLI module
// loaded first: fetch, doctor and the proxy depend on nothing being wired up behind their backs.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { mergeAccountSources } from '../../src/cli/config.ts';
import { accountOptionsFor, openTokens, tokenProviderFor, tokenSourceOf } from '../../src/cli/tokens.ts';
import { resolveAccount } from '../../src/oauth/account.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import { removeTempTree } from '../helpers/test-log.ts';

const PASSPHRASE = 'correct horse battery staple, for a test only';
recordTestSecret(PASSPHRASE);

async function cliContext(t: { after(fn: () => Promise<void>): void }) {
  const home = await mkdtemp(join(tmpdir(), 'popgate-cli-tokens-'));
  // The store, key salt and config go to the run's secret scan before the home is removed.
  t.after(() => removeTempTree(home, { passphrases: [PASSPHRASE] }));
  const env = { HOME: home, POPGATE_PASSPHRASE: PASSPHRASE };
  // Whatever the token code writes to the CLI's streams goes to the scan too.
  const ctx = capturedCliContext(env, { log: 'cli-tokens' });
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
  // Stored encrypted: in the ledger, so the tree scan proves the store file does not hold it plain.
  recordTestSecret('stored-access-token-for-cli-tokens-test');
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
