// `popgate serve` with an issuer behind a private CA (issue 12 item 2): the dev authorization
// server over https with a certificate from a throwaway CA, its URL an IP literal (so the
// identity check is OpenSSL's, src/internal/tls-identity.ts). Without `ca` the server still
// starts, says at start-up in the log and on stderr that the issuer's certificate is not trusted
// and how to fix it, and logins answer [SYS/TEMP]; with `ca` (config file or --issuer-ca) logins
// work; a CA file that is not PEM certificates stops the start with exit 78 naming the file.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import {
  type AuthorizationServer,
  deviceLogin,
  nativeAccount,
  startTestAuthorizationServer,
} from '../helpers/oidc.ts';
import { WireClient, xoauth2 } from '../unit/server-helpers.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const USER = 'alice@example.test';

interface Serve {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
}

describe('popgate serve with an issuer behind a private CA', () => {
  let dir: string;
  let certs: TestCerts;
  let as: AuthorizationServer;
  let token: string;
  const running: ChildProcess[] = [];

  /** The environment of a serve process: no extra CA from the test runner's environment. */
  const env = () => {
    const copy = { ...process.env };
    delete copy.NODE_EXTRA_CA_CERTS;
    return copy;
  };

  async function serve(args: string[]): Promise<Serve> {
    const proc = spawn(process.execPath, [BIN, 'serve', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: env(),
    });
    running.push(proc);
    let out = '';
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const port = await new Promise<number>((resolve, reject) => {
      proc.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const match = /listening pop3:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
      proc.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    return { proc, port, stderr: () => err };
  }

  async function configFile(name: string, issuerLines: string[]): Promise<string> {
    const path = join(dir, name);
    await writeFile(
      path,
      [
        '[server]',
        'listen = ["pop3://127.0.0.1:0"]',
        'allow_plaintext_loopback = true',
        `store = ${JSON.stringify(`maildir:${join(dir, 'mail')}`)}`,
        'shutdown_grace_seconds = 0',
        '',
        '[[server.issuers]]',
        `issuer = ${JSON.stringify(as.issuer)}`,
        `audience = ${JSON.stringify(as.pop3Audience)}`,
        ...issuerLines,
        '',
      ].join('\n'),
    );
    return path;
  }

  /** Waits for the start-up check's verdict on the issuer in the log. */
  async function startupVerdict(s: Serve): Promise<string> {
    for (;;) {
      const text = s.stderr();
      if (/identity provider reachable/.test(text)) return text;
      // An unreachable issuer is two writes (the JSON warning, then the plain-text line), which can
      // arrive in separate chunks: the verdict is complete once both are in.
      if (/identity provider not reachable yet/.test(text) && /cannot be used yet[^\n]*\n/.test(text))
        return text;
      await new Promise<void>((resolve, reject) => {
        s.proc.stderr!.once('data', () => resolve());
        s.proc.once('exit', (code) => reject(new Error(`serve exited ${code}: ${s.stderr()}`)));
      });
    }
  }

  async function login(port: number): Promise<string> {
    const c = await WireClient.connect(port);
    try {
      await c.line();
      const first = await c.command(`AUTH XOAUTH2 ${xoauth2(USER, token)}`);
      return first.startsWith('+ ') ? await c.command('') : first;
    } finally {
      c.close();
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'popgate-issuer-ca-'));
    certs = await createTestCerts();
    as = await startTestAuthorizationServer({
      tls: { cert: certs.server.certPem, key: certs.server.keyPem, ca: certs.caCertPem },
    });
    assert.match(as.issuer, /^https:\/\/127\.0\.0\.1:\d+$/, 'an IP-literal issuer');
    const account = await nativeAccount(as, 'ca-test', {
      resource: as.pop3Audience,
      http: { ca: certs.caCertPem },
    });
    token = (await deviceLogin(as, account, USER)).accessToken;
    const store = new MaildirStore(join(dir, 'mail'));
    await store.deliver(USER, Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
    await store.close();
  });

  after(async () => {
    for (const proc of running) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((r) => proc.once('exit', r));
      }
    }
    await as?.stop();
    await certs?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('without ca: the start-up check names the TLS reason and the fix; logins get [SYS/TEMP]', async () => {
    const s = await serve(['--config', await configFile('no-ca.toml', [])]);
    const log = await startupVerdict(s);
    assert.match(
      log,
      /popgate serve: issuer https:\/\/127\.0\.0\.1:\d+ cannot be used yet: the issuer's certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); trust the CA that signed it: the issuer's ca option \(popgate serve: ca in \[\[server\.issuers\]\] or --issuer-ca FILE\)/,
    );
    const line = log.split('\n').find((l) => l.includes('"identity provider not reachable yet"'));
    assert.ok(line, log);
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(entry.reason, "the issuer's certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)");
    assert.match(String(entry.hint), /ca in \[\[server\.issuers\]\]/);
    assert.match(await login(s.port), /^-ERR \[SYS\/TEMP\] /);
    assert.match(
      s.stderr(),
      /"reason":"the issuer's certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)"/,
    );
  });

  it('with ca in [[server.issuers]]: the issuer is reachable and the login works', async () => {
    const s = await serve([
      '--config',
      await configFile('ca.toml', [`ca = ${JSON.stringify(certs.caCertPath)}`]),
    ]);
    assert.match(await startupVerdict(s), /"identity provider reachable"/);
    assert.match(await login(s.port), /^\+OK Logged in, 1 messages/);
  });

  it('with --issuer-ca in the flags form: the login works', async () => {
    const s = await serve([
      '--listen',
      'pop3://127.0.0.1:0',
      '--allow-plaintext-loopback',
      '--store',
      `maildir:${join(dir, 'mail')}`,
      '--issuer',
      as.issuer,
      '--audience',
      as.pop3Audience,
      '--issuer-ca',
      certs.caCertPath,
    ]);
    assert.match(await startupVerdict(s), /"identity provider reachable"/);
    assert.match(await login(s.port), /^\+OK Logged in/);
  });

  it('a CA file that is not PEM certificates stops the start: exit 78, the file and the problem named', async () => {
    const notPem = join(dir, 'not-a-ca.pem');
    await writeFile(notPem, 'hello\n');
    const proc = spawn(
      process.execPath,
      [BIN, 'serve', '--config', await configFile('bad-ca.toml', [`ca = ${JSON.stringify(notPem)}`])],
      { stdio: ['ignore', 'pipe', 'pipe'], env: env() },
    );
    running.push(proc);
    let err = '';
    proc.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 78, err);
    assert.ok(err.includes(`server.issuers[0].ca: the CA file ${notPem} is not usable`), err);
    assert.match(err, /no PEM certificate/);
  });
});
