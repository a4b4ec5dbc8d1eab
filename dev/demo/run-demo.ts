/**
 * The demo (`npm start`, entry dev/demo/main.ts): the whole system on one machine, every hop
 * TLS-verified. It starts a throwaway CA, a real OAuth2 authorization server (oidc-provider) and
 * `popgate serve`, then runs the real `popgate login`, `fetch`, `token status` and `logout`
 * commands as a user would, and checks that each step did what it says. Nothing outside the demo's own folder is touched.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { openInBrowser } from '../../src/oauth/open-browser.ts';
import { type AuthorizationServer, startAuthorizationServer } from '../authorization-server/index.ts';
import { createDevCa } from '../certs.ts';
import { DevToolsError } from '../errors.ts';
import { type RunOptions, runPopgate, startPopgate } from './children.ts';
import { waitForLine } from './net.ts';
import { demoMessages, lateMessage } from './seed-messages.ts';
import { inspectStoredTokens } from './tokens.ts';

export interface DemoOptions {
  /** Parent folder; each run gets a fresh sub-folder inside it, so nothing is overwritten. */
  readonly dir: string;
  readonly keepRunning: boolean;
  /** True when a person is watching on a terminal (not CI): the device code is theirs to approve. */
  readonly interactive: boolean;
  readonly out: Writable;
  readonly env: NodeJS.ProcessEnv;
  /** Resolves when the user asks to stop (Ctrl-C) in --keep-running mode. */
  readonly untilStopped: () => Promise<void>;
}

export interface DemoResult {
  readonly runDir: string;
  readonly steps: readonly string[];
}

const USER = 'demo@example.test';
const ACCOUNT = 'demo';

/** A step that did not do what it says: the demo exits non-zero with this message. */
export class DemoStepError extends DevToolsError {
  constructor(step: string, detail: string) {
    super('ERR_DEMO_STEP', `demo step "${step}" failed: ${detail}`);
  }
}

function fingerprint(secret: string): string {
  // A one-way fingerprint lets the reader see that a token changed without seeing any of it.
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

async function countMessages(maildir: string): Promise<number> {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    try {
      n += (await readdir(join(maildir, sub))).filter((f) => !f.startsWith('.')).length;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return n;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const say = (text: string): void => void options.out.write(`${text}\n`);
  const practice = (text: string): void => say(`   ↳ ${text}`);
  const steps: string[] = [];
  const check = (step: string, ok: boolean, detail: string): void => {
    if (!ok) throw new DemoStepError(step, detail);
    steps.push(step);
    say(`   ✔ ${step}`);
  };

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = resolve(options.dir, `run-${stamp}`);
  const dirs = {
    ca: join(runDir, 'ca'),
    config: join(runDir, 'config'),
    data: join(runDir, 'data'),
    state: join(runDir, 'state'),
    serverMail: join(runDir, 'server-maildrops'),
    maildir: join(runDir, 'Maildir'),
  };
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  say(`popgate's demo — everything lives in ${runDir}\n`);

  // 1. Certificates.
  say('1. A throwaway certificate authority');
  const ca = await createDevCa(dirs.ca, { commonName: 'popgate demo CA', days: 7 });
  const serverCert = await ca.issue('localhost');
  practice(
    'every hop below is TLS with certificate and host-name checks; no "insecure" switch anywhere (practice 8)',
  );
  check('CA and server certificate created', serverCert.sans.length > 0, 'no certificate');

  // 2. Authorization server.
  say('\n2. An OAuth2/OIDC authorization server (oidc-provider) on https://127.0.0.1');
  const authServer: AuthorizationServer = await startAuthorizationServer({
    tls: { cert: serverCert.certPem, key: serverCert.keyPem, ca: ca.caCertPem },
    accessTokenTtl: 300,
    accessTokenClaims: (accountId) => ({ email: accountId }),
  });
  const childEnv: NodeJS.ProcessEnv = {
    ...options.env,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_STATE_HOME: dirs.state,
    NODE_EXTRA_CA_CERTS: ca.caCertPath,
    POPGATE_CONFIG: join(dirs.config, 'popgate', 'config.toml'),
  };
  // The demo reads its own token store to show rotation, so it pins the key file (never the
  // user's OS keyring, which would also keep an entry after the demo is gone).
  delete childEnv.POPGATE_PASSPHRASE;
  childEnv.POPGATE_KEY_SOURCE = 'file';
  const indent =
    (prefix: string): NonNullable<RunOptions['onLine']> =>
    (line) =>
      say(`      ${prefix}${line}`);
  let server: ReturnType<typeof startPopgate> | undefined;
  try {
    practice(
      `issuer ${authServer.issuer}: JWT access tokens (5 min) for audience ${authServer.pop3Audience}, rotating refresh tokens`,
    );
    check('authorization server up', authServer.issuer.startsWith('https://'), authServer.issuer);

    // 3. POP3 server with a seeded maildrop.
    say('\n3. `popgate serve`, validating those tokens, with a seeded Maildir');
    await mkdir(dirs.serverMail, { recursive: true, mode: 0o700 });
    for (const message of demoMessages(USER)) {
      const result = await runPopgate(['deliver', '--user', USER, '--store', `maildir:${dirs.serverMail}`], {
        env: childEnv,
        input: message.bytes,
      });
      check(`delivered ${message.description} with \`popgate deliver\``, result.code === 0, result.stderr);
    }
    // Port 0 for both, read back from what serve prints: a port probed free and handed over could
    // be taken by another process in between (seen as EADDRINUSE when tests run side by side).
    const serveLines: string[] = [];
    const echoServe = indent('serve: ');
    server = startPopgate(
      [
        'serve',
        '--listen',
        'pop3s://127.0.0.1:0',
        '--tls-cert',
        serverCert.certPath,
        '--tls-key',
        serverCert.keyPath,
        '--issuer',
        authServer.issuer,
        '--audience',
        authServer.pop3Audience,
        '--store',
        `maildir:${dirs.serverMail}`,
        '--metrics',
        '127.0.0.1:0',
        '--log-level',
        'warn',
      ],
      {
        env: childEnv,
        onLine: (line, stream) => {
          serveLines.push(line);
          echoServe(line, stream);
        },
      },
    );
    const listening = await waitForLine(server.child, /^listening /, 30_000);
    const popPort = Number(/:(\d+)$/.exec(listening)?.[1]);
    const metricsPort = Number(
      /^metrics http:\/\/[^/]*:(\d+)\//.exec(serveLines.find((l) => l.startsWith('metrics ')) ?? '')?.[1],
    );
    practice(
      'the server checks signature (JWKS from discovery), iss, aud, typ at+jwt, exp/nbf and the `pop3` scope (practice 9)',
    );
    practice('SASL is offered only over TLS; deletions commit only in the UPDATE state (DESIGN rules)');
    check(`POP3 server listening on pop3s://127.0.0.1:${popPort}`, true, '');

    // 4. Login with the device flow.
    say('\n4. `popgate login` with the device flow');
    const configFile = childEnv.POPGATE_CONFIG as string;
    await mkdir(join(dirs.config, 'popgate'), { recursive: true, mode: 0o700 });
    await writeFile(
      configFile,
      [
        `[accounts.${ACCOUNT}]`,
        'provider = "custom"',
        `issuer = "${authServer.issuer}"`,
        `client_id = "${authServer.clients.native.clientId}"`,
        'scopes = ["openid", "offline_access", "pop3"]',
        'flow = "device"',
        `user = "${USER}"`,
        'host = "localhost"',
        `port = ${popPort}`,
        'tls = "implicit"',
        'mechanism = "OAUTHBEARER"',
        `ca = "${ca.caCertPath}"`,
        `to = "maildir:${dirs.maildir}"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    practice(`account "${ACCOUNT}" written to ${configFile}; it holds no secret (practice 4)`);
    practice('scopes asked for: pop3 + offline_access, nothing more (practice 10)');
    let approved = false;
    const login = startPopgate(['login', '--account', ACCOUNT], {
      env: childEnv,
      onLine: (line) => {
        say(`      login: ${line}`);
        const code = /enter the code: (\S+)/.exec(line)?.[1];
        if (code && !approved) {
          approved = true;
          if (options.interactive) {
            const page = `${authServer.issuer}/device?user_code=${encodeURIComponent(code)}`;
            const opened = openInBrowser(page, options.env);
            say(
              `      (${opened ? 'opened the page in your browser' : `open ${page} in a browser`}; sign in as ${USER} and allow; the browser must trust ${ca.caCertPath})`,
            );
          } else {
            say(
              `      (no person at a terminal: the demo approves code ${code} as ${USER} through the provider's own pages)`,
            );
            authServer.approveDevice(code, USER).catch((error: unknown) => {
              say(`      approval failed: ${(error as Error).message}`);
            });
          }
        }
      },
    });
    const loginResult = await login.done;
    check('logged in with the device flow', loginResult.code === 0 && approved, loginResult.stderr);
    const stored = await inspectStoredTokens(dirs.data, ACCOUNT);
    check(
      'no token in plain text under the data folder',
      !stored.plaintextFound,
      'a token was found in plain text',
    );
    practice(
      `tokens encrypted with AES-256-GCM in ${stored.file} (mode ${stored.mode}), key in ${stored.keyFile} (practice 5)`,
    );

    const status = await runPopgate(['token', 'status', '--account', ACCOUNT], {
      env: childEnv,
      onLine: indent('status: '),
    });
    check(
      '`popgate token status` shows expiry and scopes, never the token',
      status.code === 0 && !stored.leakedInto(status),
      status.stderr,
    );
    practice(
      'the access token is renewed ahead of expiry: max(5 min, 10 % of its lifetime) early (practice 6)',
    );

    // 5. Fetch, twice, with new mail in between.
    say('\n5. `popgate fetch` into the demo Maildir');
    const fetch1 = await runPopgate(['fetch', '--account', ACCOUNT], { env: childEnv, onLine: indent('') });
    const afterFirst = await countMessages(dirs.maildir);
    check(
      `first fetch delivered ${afterFirst} messages`,
      fetch1.code === 0 && afterFirst === 4,
      `exit ${fetch1.code}, ${afterFirst} messages\n${fetch1.stderr}`,
    );
    practice(
      'each message is fsynced into Maildir/new and its UIDL recorded before it counts as fetched (never lose mail)',
    );
    const late = lateMessage(USER);
    const deliverLate = await runPopgate(
      ['deliver', '--user', USER, '--store', `maildir:${dirs.serverMail}`],
      {
        env: childEnv,
        input: late.bytes,
      },
    );
    check('new mail arrived on the server', deliverLate.code === 0, deliverLate.stderr);
    const fetch2 = await runPopgate(['fetch', '--account', ACCOUNT], { env: childEnv, onLine: indent('') });
    const afterSecond = await countMessages(dirs.maildir);
    check(
      'second fetch took only the new message',
      fetch2.code === 0 && afterSecond === 5,
      `exit ${fetch2.code}, ${afterSecond} messages`,
    );
    const fetch3 = await runPopgate(['fetch', '--account', ACCOUNT], { env: childEnv, onLine: indent('') });
    check(
      'third fetch found nothing new',
      fetch3.code === 0 && (await countMessages(dirs.maildir)) === 5,
      fetch3.stderr,
    );

    // 6. Forced refresh shows rotation.
    say('\n6. A forced refresh: the refresh token rotates');
    const before = await inspectStoredTokens(dirs.data, ACCOUNT);
    const refreshes = authServer.grantCounts().refresh_token ?? 0;
    const refresh = await runPopgate(['token', 'refresh', '--account', ACCOUNT], {
      env: childEnv,
      onLine: indent('refresh: '),
    });
    const after = await inspectStoredTokens(dirs.data, ACCOUNT);
    check(
      'refresh token rotated and saved before use',
      refresh.code === 0 &&
        (authServer.grantCounts().refresh_token ?? 0) === refreshes + 1 &&
        before.refreshToken !== undefined &&
        after.refreshToken !== undefined &&
        before.refreshToken !== after.refreshToken,
      refresh.stderr,
    );
    practice(
      `refresh token fingerprint ${fingerprint(before.refreshToken ?? '')} → ${fingerprint(after.refreshToken ?? '')}; the old one is now void at the provider (practice 6)`,
    );

    // 7. Logout revokes.
    if (options.keepRunning) {
      say('\n--keep-running: the authorization server and POP3 server stay up.');
      say(
        `   env:   export XDG_CONFIG_HOME=${dirs.config} XDG_DATA_HOME=${dirs.data} XDG_STATE_HOME=${dirs.state} NODE_EXTRA_CA_CERTS=${ca.caCertPath}`,
      );
      say(
        `   mutt:  set pop_host="pops://${USER}@localhost:${popPort}"; set pop_authenticators="oauthbearer"; set ssl_ca_certificates_file="${ca.caCertPath}"`,
      );
      say(
        `          set pop_oauth_refresh_command="popgate token print --account ${ACCOUNT}"   (with the env above)`,
      );
      say(
        `   Thunderbird: import ${ca.caCertPath} as a trusted CA; add a POP3 account ${USER}, server localhost, port ${popPort}, SSL/TLS, authentication OAuth2 (Thunderbird knows only its built-in providers' OAuth settings, so use mutt or curl for this local issuer)`,
      );
      say(
        `   curl:  curl --cacert ${ca.caCertPath} --oauth2-bearer "$(popgate token print --account ${ACCOUNT})" -u ${USER}: pop3s://localhost:${popPort}/`,
      );
      say(`   metrics: http://127.0.0.1:${metricsPort}/metrics`);
      say('Press Ctrl-C to stop (the account stays logged in; nothing is removed).');
      await options.untilStopped();
      return { runDir, steps };
    }
    say('\n7. `popgate logout` revokes the refresh token at the provider');
    const revokedToken = after.refreshToken ?? '';
    const logout = await runPopgate(['logout', '--account', ACCOUNT], {
      env: childEnv,
      onLine: indent('logout: '),
    });
    const stillValid = await authServer.provider.RefreshToken.find(revokedToken);
    check(
      'logged out and the refresh token is revoked at the provider',
      logout.code === 0 && !stillValid,
      logout.stderr,
    );
    practice('RFC 7009 revocation, then the local copy is deleted (practice 7)');
    say(`\nDone: ${steps.length} checks passed. Your fetched mail is in ${dirs.maildir}`);
    return { runDir, steps };
  } finally {
    if (server) {
      server.child.kill('SIGTERM');
      await server.done.catch(() => undefined);
    }
    await authServer.stop();
  }
}
