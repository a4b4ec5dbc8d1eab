// `popgate token refresh` / `token print --refresh` as real CLI children sharing one token store,
// against a real oidc-provider (rotating refresh tokens) behind a holding HTTP proxy:
//  - an empty lock file (a holder killed between creating the lock and writing its pid) is
//    recovered: at once when it is old, after the 5 s grace for unknown content when it is fresh;
//  - two processes provably inside a refresh at once (the first one's token request is held at
//    the proxy until the second has found the lock taken) make exactly one refresh request and
//    obtain the same new token.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import { type AuthorizationServer, startTestAuthorizationServer, tempDir } from '../helpers/oidc.ts';
import { appendTestLog } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const PROBE = new URL('../helpers/lock-wait-probe.mjs', import.meta.url).pathname;

let as: AuthorizationServer;
let home: Awaited<ReturnType<typeof tempDir>>;
let proxy: HoldingProxy;
let env: Record<string, string>;

/**
 * An HTTP proxy in front of the authorization server that counts refresh-token grants and, when
 * armed, holds the next one (the request reached the proxy; the answer waits for `release`).
 */
interface HoldingProxy {
  readonly url: string;
  refreshRequests: number;
  /** Holds the next refresh request; resolves when it has arrived. */
  holdNext(): Promise<void>;
  /** Lets the held request go on to the server. */
  release(): void;
  close(): Promise<void>;
}

async function startHoldingProxy(target: URL): Promise<HoldingProxy> {
  let arm: { arrived: () => void; gate: Promise<void>; open: () => void } | undefined;
  const state = { refreshRequests: 0 };
  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const refresh = new URLSearchParams(body.toString('latin1')).get('grant_type') === 'refresh_token';
      if (!refresh) return forward(req, body, res);
      state.refreshRequests++;
      const held = arm;
      arm = undefined;
      if (!held) return forward(req, body, res);
      held.arrived();
      void held.gate.then(() => forward(req, body, res));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let opener: (() => void) | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    get refreshRequests() {
      return state.refreshRequests;
    },
    set refreshRequests(n: number) {
      state.refreshRequests = n;
    },
    holdNext() {
      return new Promise<void>((arrived) => {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        opener = open;
        arm = { arrived, gate, open };
      });
    },
    release() {
      opener?.();
      opener = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `popgate login` in this process (the device flow approved through the provider's pages). */
async function login(): Promise<void> {
  const args = ['login', '--account', 'work'];
  // Both streams go to the run's secret scan as written.
  const ctx = capturedCliContext(env, { log: 'oauth-token-refresh-cli', args });
  let approval: Promise<void> | undefined;
  ctx.stderr.onText = (text) => {
    const code = /enter the code: (\S+)/.exec(text)?.[1];
    if (code && !approval) approval = as.approveDevice(code, 'alice@example.test');
  };
  const code = await main(args, ctx);
  await approval;
  assert.equal(code, 0, ctx.stderr.text);
}

interface Child {
  /** Resolves once stderr contains `text`. */
  saw(text: string): Promise<void>;
  result: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** A real `popgate` child sharing the test's home; `probe` preloads the lock-wait probe. */
function popgate(args: string[], options: { probe?: boolean } = {}): Child {
  const child = spawn(process.execPath, [...(options.probe ? ['--import', PROBE] : []), BIN, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
    for (const w of waiters.splice(0)) {
      if (stderr.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      appendTestLog('oauth-token-refresh-cli', stderr);
      // `token print` writes the token to stdout by design; every other stdout is scanned.
      if (!(args[0] === 'token' && args[1] === 'print')) appendTestLog('oauth-token-refresh-cli', stdout);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    result,
    saw: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stderr.includes(text)) return resolve();
        waiters.push({ text, resolve });
        void result.then((r) =>
          reject(new Error(`child exited ${r.code} before printing ${text}: ${r.stderr}`)),
        );
      }),
  };
}

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 3600 });
  home = await tempDir('popgate-refresh-cli-');
  proxy = await startHoldingProxy(new URL(as.issuer));
  const metadata = (await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string;
  };
  const tokenPath = new URL(metadata.token_endpoint).pathname;
  env = {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    PATH: process.env.PATH ?? '',
    ...(process.env.POPGATE_RUN_DIST ? { POPGATE_RUN_DIST: process.env.POPGATE_RUN_DIST } : {}),
  };
  await mkdir(join(home.dir, 'config', 'popgate'), { recursive: true });
  await writeFile(
    join(home.dir, 'config', 'popgate', 'config.toml'),
    [
      '[accounts.work]',
      'user = "alice@example.test"',
      'provider = "custom"',
      `issuer = "${as.issuer}"`,
      // Token requests go through the holding proxy; discovery and the device flow's pages do not.
      `token_endpoint = "${proxy.url}${tokenPath}"`,
      `client_id = "${as.clients.native.clientId}"`,
      'scopes = ["pop3", "offline_access"]',
      'flow = "device"',
      'allow_insecure_http = true',
      '',
    ].join('\n'),
  );
  await login();
});

after(async () => {
  await proxy?.close();
  await as?.stop();
  await home?.cleanup();
});

const lockFile = () => join(home.dir, 'data', 'popgate', 'tokens', 'work.token.lock');
const refreshes = (): number => as.grantCounts().refresh_token ?? 0;

async function gone(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    () => true,
  );
}

test('an empty token-store lock with an old mtime (holder killed before writing its pid) is broken at once', async (t) => {
  t.after(() => rm(lockFile(), { force: true }));
  await writeFile(lockFile(), '', { mode: 0o600 });
  const old = new Date(Date.now() - 3_600_000);
  await utimes(lockFile(), old, old);
  const before = refreshes();
  const run = await popgate(['token', 'refresh', '--account', 'work']).result;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /refreshed account work/);
  assert.equal(refreshes() - before, 1);
  assert.ok(await gone(lockFile()), 'the lock is released afterwards');
});

test('a fresh empty token-store lock is waited for (its holder may be about to write its pid), then broken after 5 s', async (t) => {
  t.after(() => rm(lockFile(), { force: true }));
  // A holder that is alive writes its pid within microseconds of creating the file; one that is
  // still empty after the 5 s grace for unknown content died in between. The refresh then goes on
  // (well inside the 60 s lock timeout) instead of failing with ERR_OAUTH_LOCK_TIMEOUT.
  await writeFile(lockFile(), '', { mode: 0o600 });
  const before = refreshes();
  const run = await popgate(['token', 'refresh', '--account', 'work']).result;
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /ERR_OAUTH_LOCK_TIMEOUT/);
  assert.equal(refreshes() - before, 1);
  assert.ok(await gone(lockFile()));
});

test('two popgate processes inside a refresh at once make one refresh request and print the same new token', async () => {
  const before = refreshes();
  const proxiedBefore = proxy.refreshRequests;
  const held = proxy.holdNext();
  // A: its refresh request reaches the proxy and is held there, with A holding the store's lock.
  const a = popgate(['token', 'print', '--refresh', '--account', 'work']);
  await held;
  // B: started only now, so it reads the stored (old) token and then finds the lock taken.
  const b = popgate(['token', 'print', '--refresh', '--account', 'work'], { probe: true });
  await b.saw('lock-wait-probe: busy');
  proxy.release();
  const [ra, rb] = await Promise.all([a.result, b.result]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(proxy.refreshRequests - proxiedBefore, 1, 'one refresh request left the two processes');
  assert.equal(refreshes() - before, 1, 'one refresh grant at the authorization server');
  const tokenA = ra.stdout.trim();
  assert.ok(tokenA.length > 20);
  assert.equal(rb.stdout.trim(), tokenA, 'both processes print the same new token');
  // And it is the new one: a third, plain `token print` (no refresh) prints it too.
  const now = await popgate(['token', 'print', '--account', 'work']).result;
  assert.equal(now.stdout.trim(), tokenA);
});
