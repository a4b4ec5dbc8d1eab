// The token manager against a real oidc-provider with rotating refresh tokens: refresh ahead of
// expiry on a frozen clock, single flight in one process and across two, reuse detection,
// transient failures, revocation at logout, and no token in any file, log line or error.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isPopgateError, type OAuthError } from '../../src/errors.ts';
import type { OAuthAccount } from '../../src/oauth/account.ts';
import { resolveAccount } from '../../src/oauth/account.ts';
import { clientCredentialsFlow } from '../../src/oauth/flows/client-credentials.ts';
import { refreshFlow } from '../../src/oauth/flows/refresh.ts';
import { EncryptedFileTokenStore } from '../../src/oauth/stores/encrypted-file.ts';
import { KeyFileSource } from '../../src/oauth/stores/key-source.ts';
import { MemoryTokenStore } from '../../src/oauth/stores/memory.ts';
import type { TokenStore } from '../../src/oauth/stores/types.ts';
import { TokenManager, type TokenManagerOptions } from '../../src/oauth/token-manager.ts';
import type { TokenSet } from '../../src/oauth/token-set.ts';
import type { Logger } from '../../src/observability/logger.ts';
import {
  type AuthorizationServer,
  deviceLogin,
  nativeAccount,
  secretsOf,
  startTestAuthorizationServer,
  tempDir,
} from '../helpers/oidc.ts';
import { appendTestLog } from '../helpers/test-log.ts';

const root = new URL('../..', import.meta.url).pathname;
let as: AuthorizationServer;
const issued = new Set<string>();
const logLines: string[] = [];
const errorTexts: string[] = [];

const capture: Logger = {
  debug: (fields, message) => logLines.push(JSON.stringify({ fields, message })),
  info: (fields, message) => logLines.push(JSON.stringify({ fields, message })),
  warn: (fields, message) => logLines.push(JSON.stringify({ fields, message })),
  error: (fields, message) => logLines.push(JSON.stringify({ fields, message })),
};

function remember(tokens: Pick<TokenSet, 'accessToken' | 'refreshToken'>): void {
  for (const secret of secretsOf(tokens)) issued.add(secret);
}

/** Runs `promise`, records the error's message and enumerable fields, rethrows. */
async function recordError<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    errorTexts.push(String((error as Error).message), JSON.stringify(error), String(error));
    throw error;
  }
}

const refreshes = (): number => as.grantCounts().refresh_token ?? 0;

async function loggedIn(store: TokenStore, options: Partial<TokenManagerOptions> = {}, name = 'acct') {
  const account = await nativeAccount(as, name);
  const tokens = await deviceLogin(as, account);
  remember(tokens);
  let now = tokens.obtainedAt;
  const manager = new TokenManager({ store, logger: capture, clock: () => now, ...options });
  await manager.saveLogin(account, tokens, 'device');
  return {
    account,
    tokens,
    manager,
    setNow: (value: number) => {
      now = value;
    },
  };
}

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 120 });
});

after(async () => {
  await as.stop();
  // The secret scan: no token issued during this file reached a log line or an error message.
  appendTestLog('oauth-token-manager', [...logLines, ...errorTexts].join('\n'));
  assert.ok(issued.size > 10, 'the scan must have tokens to look for');
  for (const secret of issued) {
    for (const line of [...logLines, ...errorTexts]) {
      assert.ok(!line.includes(secret), 'a token leaked into a log line or an error message');
    }
  }
});

describe('refresh ahead of expiry (frozen clock)', () => {
  test('a token inside its lifetime minus the skew is handed out without a refresh', async () => {
    const { account, tokens, manager, setNow } = await loggedIn(new MemoryTokenStore());
    const before = refreshes();
    setNow(tokens.obtainedAt + 59_000); // 120 s token: skew is half the lifetime, 60 s
    const token = await manager.getAccessToken(account);
    assert.equal(token.value, tokens.accessToken);
    assert.equal(token.refreshed, false);
    assert.equal(refreshes(), before);
  });

  test('inside the skew window it refreshes and persists the rotated refresh token before handing out', async () => {
    const store = new MemoryTokenStore();
    const { account, tokens, manager, setNow } = await loggedIn(store);
    setNow(tokens.obtainedAt + 61_000);
    const token = await manager.getAccessToken(account);
    const stored = await store.get(account.name);
    remember({ accessToken: token.value, refreshToken: stored?.refreshToken });
    assert.equal(token.refreshed, true);
    assert.notEqual(token.value, tokens.accessToken);
    assert.equal(stored?.accessToken, token.value);
    assert.ok(stored?.refreshToken && stored.refreshToken !== tokens.refreshToken);
  });

  test('forceRefresh refreshes a token that is still fresh', async () => {
    const { account, tokens, manager } = await loggedIn(new MemoryTokenStore());
    const token = await manager.getAccessToken(account, { forceRefresh: true });
    remember({ accessToken: token.value, refreshToken: undefined });
    assert.notEqual(token.value, tokens.accessToken);
  });
});

describe('single flight', () => {
  test('50 concurrent calls in one process make one refresh request', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const store = new EncryptedFileTokenStore({
        dir: join(dir, 'tokens'),
        keySource: new KeyFileSource(join(dir, 'key')),
      });
      const { account, tokens, manager, setNow } = await loggedIn(store);
      setNow(tokens.obtainedAt + 100_000);
      const before = refreshes();
      const results = await Promise.all(Array.from({ length: 50 }, () => manager.getAccessToken(account)));
      remember({
        accessToken: results[0]?.value as string,
        refreshToken: (await store.get(account.name))?.refreshToken,
      });
      assert.equal(refreshes() - before, 1);
      assert.equal(new Set(results.map((r) => r.value)).size, 1);
    } finally {
      await cleanup();
    }
  });

  test('two popgate processes sharing the store make one refresh request', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const tokensDir = join(dir, 'tokens');
      const keyPath = join(dir, 'key');
      const store = new EncryptedFileTokenStore({ dir: tokensDir, keySource: new KeyFileSource(keyPath) });
      const account = await nativeAccount(as, 'shared');
      const tokens = await deviceLogin(as, account);
      remember(tokens);
      // Stored as already expired, so both processes want to refresh at once.
      await new TokenManager({ store, clock: () => tokens.obtainedAt }).saveLogin(
        account,
        { ...tokens, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 121_000 },
        'device',
      );
      const go = join(dir, 'go');
      const child = `
        const { existsSync } = await import('node:fs');
        const { createHash } = await import('node:crypto');
        const { resolveAccount } = await import(${JSON.stringify(`${root}src/oauth/account.ts`)});
        const { EncryptedFileTokenStore } = await import(${JSON.stringify(`${root}src/oauth/stores/encrypted-file.ts`)});
        const { KeyFileSource } = await import(${JSON.stringify(`${root}src/oauth/stores/key-source.ts`)});
        const { TokenManager } = await import(${JSON.stringify(`${root}src/oauth/token-manager.ts`)});
        const account = await resolveAccount({ name: 'shared', issuer: ${JSON.stringify(as.issuer)}, clientId: ${JSON.stringify(as.clients.native.clientId)}, scopes: ['pop3', 'offline_access'], http: { allowInsecureHttp: true } });
        const store = new EncryptedFileTokenStore({ dir: ${JSON.stringify(tokensDir)}, keySource: new KeyFileSource(${JSON.stringify(keyPath)}) });
        const manager = new TokenManager({ store });
        process.stdout.write('ready\\n');
        for (let i = 0; i < 2000 && !existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 5));
        const token = await manager.getAccessToken(account);
        process.stdout.write(JSON.stringify({ hash: createHash('sha256').update(token.value).digest('hex'), refreshed: token.refreshed }) + '\\n');
      `;
      const before = refreshes();
      const runs = [0, 1].map(() => {
        const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        proc.stdout.on('data', (chunk) => {
          out += chunk;
        });
        proc.stderr.on('data', (chunk) => {
          err += chunk;
        });
        const ready = new Promise<void>((resolve) => {
          proc.stdout.on('data', () => {
            if (out.includes('ready')) resolve();
          });
        });
        const done = new Promise<string>((resolve, reject) => {
          proc.on('close', (code) =>
            code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err.slice(-500)}`)),
          );
        });
        return { ready, done };
      });
      await Promise.all(runs.map((run) => run.ready));
      await writeFile(go, '');
      const outputs = await Promise.all(runs.map((run) => run.done));
      const results = outputs.map(
        (out) => JSON.parse(out.trim().split('\n').pop() as string) as { hash: string; refreshed: boolean },
      );
      errorTexts.push(...outputs);
      assert.equal(refreshes() - before, 1, 'exactly one refresh request reached the provider');
      assert.equal(results[0]?.hash, results[1]?.hash, 'both processes got the same token');
      assert.deepEqual(results.map((r) => r.refreshed).sort(), [false, true]);
      const stored = await store.get('shared');
      remember({ accessToken: stored?.accessToken as string, refreshToken: stored?.refreshToken });
      assert.equal(stored?.stale, false);
    } finally {
      await cleanup();
    }
  });
});

describe('revoked grants', () => {
  test('a replayed refresh token trips reuse detection: re-login required, tokens kept marked stale, notify called', async () => {
    const store = new MemoryTokenStore();
    const notified: string[] = [];
    const { account, tokens, manager } = await loggedIn(store, {
      onReauthRequired: (name, error) => {
        notified.push(`${name}:${error.code}`);
      },
    });
    // Someone else (a copied token file, a second tool) uses our refresh token first.
    remember(await refreshFlow(account, tokens.refreshToken as string, tokens.scopes));
    const error = await recordError(manager.getAccessToken(account, { forceRefresh: true })).catch(
      (e: OAuthError) => e,
    );
    assert.ok(isPopgateError(error, 'ERR_OAUTH_REAUTH_REQUIRED'));
    assert.match((error as Error).message, /account acct/);
    assert.match((error as Error).message, /popgate login --account acct/);
    const stored = await store.get('acct');
    assert.equal(stored?.stale, true);
    assert.equal(stored?.refreshToken, tokens.refreshToken, 'tokens are kept, not deleted');
    assert.deepEqual(notified, ['acct:ERR_OAUTH_REAUTH_REQUIRED']);
    // Later calls fail the same way without asking the provider again.
    const errorsBefore = as.errorCounts().invalid_grant ?? 0;
    await assert.rejects(recordError(manager.getAccessToken(account)), (e) =>
      isPopgateError(e, 'ERR_OAUTH_REAUTH_REQUIRED'),
    );
    assert.equal(as.errorCounts().invalid_grant ?? 0, errorsBefore);
  });

  test('a new login replaces stale tokens', async () => {
    const store = new MemoryTokenStore();
    const { account, tokens, manager } = await loggedIn(store);
    remember(await refreshFlow(account, tokens.refreshToken as string, tokens.scopes));
    await manager.getAccessToken(account, { forceRefresh: true }).catch(() => {});
    const again = await deviceLogin(as, account);
    remember(again);
    await manager.saveLogin(account, again, 'device');
    assert.equal((await manager.status('acct')).health, 'ok');
    assert.equal((await manager.getAccessToken(account)).value, again.accessToken);
  });
});

/** A token endpoint in front of the real one that answers from a script first. */
async function scriptedProxy(target: string, script: { status: number; headers?: Record<string, string> }[]) {
  let forwarded = 0;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const step = script.shift();
    if (step) {
      res
        .writeHead(step.status, { 'content-type': 'text/html', ...(step.headers ?? {}) })
        .end('<h1>unavailable</h1>');
      return;
    }
    forwarded++;
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'dpop']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const upstream = await fetch(target, { method: 'POST', headers, body: Buffer.concat(chunks) });
    res.writeHead(upstream.status, {
      'content-type': upstream.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    script,
    forwarded: () => forwarded,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('transient failures', () => {
  async function behindProxy(script: { status: number; headers?: Record<string, string> }[]) {
    const direct = await nativeAccount(as, 'flaky');
    const proxy = await scriptedProxy(direct.as.token_endpoint as string, script);
    const account = await nativeAccount(as, 'flaky', { endpoints: { token: proxy.url } });
    const tokens = await deviceLogin(as, account);
    remember(tokens);
    const store = new MemoryTokenStore();
    const delays: number[] = [];
    const manager = new TokenManager({
      store,
      logger: capture,
      sleep: async (ms) => {
        delays.push(ms);
      },
      random: () => 0.5,
    });
    await manager.saveLogin(account, tokens, 'device');
    return { account, tokens, store, manager, proxy, delays };
  }

  test('503 then 429 with Retry-After are retried with backoff, then the refresh succeeds', async () => {
    const { account, store, manager, proxy, delays } = await behindProxy([]);
    try {
      const forwardedBefore = proxy.forwarded();
      proxy.script.push({ status: 503 }, { status: 429, headers: { 'retry-after': '2' } });
      const token = await manager.getAccessToken(account, { forceRefresh: true });
      remember({ accessToken: token.value, refreshToken: (await store.get('flaky'))?.refreshToken });
      assert.equal(token.refreshed, true);
      assert.equal(delays.length, 2);
      assert.ok((delays[1] ?? 0) >= 2000, 'Retry-After was honoured');
      assert.equal(proxy.forwarded() - forwardedBefore, 1);
    } finally {
      await proxy.stop();
    }
  });

  test('when every attempt fails the error is transient and the stored tokens are untouched and still valid', async () => {
    const { account, tokens, store, manager, proxy, delays } = await behindProxy([]);
    try {
      const before = await store.get('flaky');
      proxy.script.push({ status: 502 }, { status: 503 }, { status: 500 }, { status: 504 });
      await assert.rejects(recordError(manager.getAccessToken(account, { forceRefresh: true })), (e) =>
        isPopgateError(e, 'ERR_OAUTH_TRANSIENT'),
      );
      assert.equal(delays.length, 3);
      assert.deepEqual(await store.get('flaky'), before);
      // The kept refresh token still works once the provider is back.
      const token = await manager.getAccessToken(account, { forceRefresh: true });
      remember({ accessToken: token.value, refreshToken: (await store.get('flaky'))?.refreshToken });
      assert.notEqual(token.value, tokens.accessToken);
    } finally {
      await proxy.stop();
    }
  });

  test('a network failure is transient too', async () => {
    const account = await nativeAccount(as, 'down', { endpoints: { token: 'http://127.0.0.1:9/token' } });
    const store = new MemoryTokenStore();
    const manager = new TokenManager({ store, sleep: async () => {}, logger: capture });
    await store.set('down', {
      version: 1,
      accessToken: 'old',
      refreshToken: 'r-old',
      expiresAt: 0,
      obtainedAt: 0,
      scopes: [],
      stale: false,
    });
    await assert.rejects(recordError(manager.getAccessToken(account)), (e) =>
      isPopgateError(e, 'ERR_OAUTH_TRANSIENT'),
    );
    assert.equal((await store.get('down'))?.refreshToken, 'r-old');
  });
});

describe('logout', () => {
  test('revokes the refresh token at the provider (RFC 7009), then deletes it locally', async () => {
    const store = new MemoryTokenStore();
    const { account, tokens, manager } = await loggedIn(store);
    assert.ok(await as.provider.RefreshToken.find(tokens.refreshToken as string));
    const result = await manager.logout(account);
    assert.deepEqual({ ...result }, { revoked: true, deleted: true, instructions: undefined });
    assert.equal(await as.provider.RefreshToken.find(tokens.refreshToken as string), undefined);
    assert.equal(await store.get('acct'), undefined);
    await assert.rejects(refreshFlow(account, tokens.refreshToken as string, []), (e) =>
      isPopgateError(e, 'ERR_OAUTH_REAUTH_REQUIRED'),
    );
  });

  test('without a revocation endpoint (Microsoft) it deletes locally and says how to withdraw consent', async () => {
    const direct = await nativeAccount(as);
    const account = await resolveAccount({
      name: 'ms',
      provider: 'microsoft',
      clientId: as.clients.native.clientId,
      endpoints: {
        token: direct.as.token_endpoint as string,
        device: direct.as.device_authorization_endpoint as string,
      },
      scopes: ['pop3', 'offline_access'],
      http: { allowInsecureHttp: true },
    });
    assert.equal(account.as.revocation_endpoint, undefined);
    const tokens = await deviceLogin(as, account);
    remember(tokens);
    const manager = new TokenManager({ store: new MemoryTokenStore() });
    await manager.saveLogin(account, tokens, 'device');
    const result = await manager.logout(account);
    assert.equal(result.revoked, false);
    assert.equal(result.deleted, true);
    assert.match(result.instructions ?? '', /myapps\.microsoft\.com/);
  });
});

describe('client credentials accounts', () => {
  test('renew by asking for a new app-only token', async () => {
    const account: OAuthAccount = await resolveAccount({
      name: 'app',
      issuer: as.issuer,
      clientId: as.clients.secretBasic.clientId,
      clientAuth: { method: 'client_secret_basic', secret: as.clients.secretBasic.clientSecret },
      scopes: ['pop3'],
      flow: 'client-credentials',
      http: { allowInsecureHttp: true },
    });
    const first = await clientCredentialsFlow(account);
    remember(first);
    let now = first.obtainedAt;
    const manager = new TokenManager({ store: new MemoryTokenStore(), clock: () => now });
    await manager.saveLogin(account, first, 'client-credentials');
    now += 119_000;
    const before = as.grantCounts().client_credentials ?? 0;
    const token = await manager.getAccessToken(account);
    remember({ accessToken: token.value, refreshToken: undefined });
    assert.equal(token.refreshed, true);
    assert.equal((as.grantCounts().client_credentials ?? 0) - before, 1);
  });
});

describe('encryption at rest', () => {
  test('no file under the data directory contains any issued token in plain text', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const store = new EncryptedFileTokenStore({
        dir: join(dir, 'tokens'),
        keySource: new KeyFileSource(join(dir, 'key')),
      });
      const mine = new Set<string>();
      const { account, tokens, manager, setNow } = await loggedIn(store, {}, 'disk');
      for (const s of secretsOf(tokens)) mine.add(s);
      for (let i = 1; i <= 3; i++) {
        setNow(tokens.obtainedAt + i * 200_000);
        const token = await manager.getAccessToken(account);
        mine.add(token.value);
        const stored = await store.get('disk');
        if (stored?.refreshToken) mine.add(stored.refreshToken);
      }
      for (const s of mine) issued.add(s);
      const files: string[] = [];
      const walk = async (path: string): Promise<void> => {
        for (const name of await readdir(path)) {
          const full = join(path, name);
          if ((await stat(full)).isDirectory()) await walk(full);
          else files.push(full);
        }
      };
      await walk(dir);
      assert.ok(files.length >= 2);
      for (const file of files) {
        const content = await readFile(file, 'latin1');
        for (const secret of mine)
          assert.ok(!content.includes(secret), `${file} holds a token in plain text`);
      }
      assert.ok(mine.size >= 6);
    } finally {
      await cleanup();
    }
  });
});
