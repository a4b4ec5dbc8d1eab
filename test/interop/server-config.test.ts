// `popgate serve --config FILE` as a real process: a TOML file with a [server] table (listen,
// tls_cert, tls_key, store) and an [[server.issuers]] entry with a JWKS file. curl logs in
// (OAUTHBEARER, a mixed-case user name) and fetches; then SIGHUP reloads a replaced certificate
// while a session opened before the reload stays open and keeps working on its TLS connection;
// a reload with a broken key keeps the certificate in use; SIGTERM ends the process with 0.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { IssuedCertificate } from '../../dev/certs.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import { requirePeer } from '../helpers/peers.ts';
import { removeTempTree } from '../helpers/test-log.ts';
import { WireClient, xoauth2 } from '../unit/server-helpers.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const USER = 'alice@example.test';
const ISSUER = 'https://issuer.example.test';
const AUDIENCE = 'pop3://popgate.test';
const MESSAGES = [
  'From: a@example.test\r\nSubject: one\r\n\r\nfirst\r\n',
  'From: b@example.test\r\nSubject: two\r\n\r\n.dot line\r\nsecond\r\n',
];

/** SHA-256 fingerprint of the certificate the server presents to a new connection. */
function presented(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once('error', reject);
  });
}

function fingerprintOf(cert: IssuedCertificate): string {
  return new X509Certificate(cert.certPem).fingerprint256;
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('popgate serve --config FILE', () => {
  let dir: string;
  let certs: TestCerts;
  let next: IssuedCertificate;
  let proc: ChildProcess | undefined;
  let stderr = '';
  let onStderr: (() => boolean)[] = [];
  /** Resolves once the server's log (stderr) matches `pattern`: the server says it is done. */
  const logged = (pattern: RegExp, timeoutMs = 20_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${pattern} never logged: ${stderr.slice(-500)}`)),
        timeoutMs,
      );
      const check = () => {
        if (!pattern.test(stderr)) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!check()) onStderr.push(check);
    });
  let pop3s = 0;
  let pop3 = 0;
  let token = '';
  /** curl as the test user with the bearer token, TLS required (pop3s, or STLS on pop3). */
  const curlBearer = (url: string) =>
    curl([
      '-sS',
      '--ssl-reqd',
      '--cacert',
      certs.caCertPath,
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      url,
    ]);
  const certFile = () => join(dir, 'tls-cert.pem');
  const keyFile = () => join(dir, 'tls-key.pem');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'popgate-serve-config-'));
    certs = await createTestCerts();
    next = await certs.ca.issue('server-next');
    await copyFile(certs.server.certPath, certFile());
    await copyFile(certs.server.keyPath, keyFile());
    // The issuer's keys as a JWKS file: no network, no discovery.
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    token = await new SignJWT({ scope: 'pop3', email: USER, client_id: 'config-test' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('sub-alice')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(pair.privateKey);
    const store = new MaildirStore(join(dir, 'mail'));
    for (const m of MESSAGES) await store.deliver(USER, Buffer.from(m));
    await store.close();
    const config = [
      '[server]',
      'listen = ["pop3s://127.0.0.1:0", "pop3://127.0.0.1:0"]',
      `tls_cert = ${JSON.stringify(certFile())}`,
      `tls_key = ${JSON.stringify(keyFile())}`,
      `store = ${JSON.stringify(`maildir:${join(dir, 'mail')}`)}`,
      'shutdown_grace_seconds = 5',
      '',
      '[[server.issuers]]',
      `issuer = ${JSON.stringify(ISSUER)}`,
      `audience = ${JSON.stringify(AUDIENCE)}`,
      `jwks = ${JSON.stringify(join(dir, 'jwks.json'))}`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'popgate.toml'), config);
    proc = spawn(process.execPath, [BIN, 'serve', '--config', join(dir, 'popgate.toml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      onStderr = onStderr.filter((check) => !check());
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 20_000);
      proc!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if ((out.match(/^listening /gm) ?? []).length >= 2) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc!.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    pop3s = Number(/listening pop3s:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    pop3 = Number(/listening pop3:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  });

  after(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc!.once('exit', r));
    }
    await certs?.cleanup();
    // The serve config and what the server wrote go to the run's secret scan first.
    if (dir) await removeTempTree(dir);
  });

  it('curl logs in with OAUTHBEARER as a mixed-case user and lists, over pop3s', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await curl([
      '-sS',
      '--cacert',
      certs.caCertPath,
      '--oauth2-bearer',
      token,
      '-u',
      'Alice@Example.TEST:',
      `pop3s://127.0.0.1:${pop3s}/`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.trim().split(/\r?\n/),
      MESSAGES.map((m, i) => `${i + 1} ${Buffer.byteLength(m)}`),
    );
  });

  it('curl retrieves a message byte for byte after STLS', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await curlBearer(`pop3://127.0.0.1:${pop3}/2`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, MESSAGES[1]);
  });

  it('SIGHUP reloads the certificate for new connections while an open session goes on', async () => {
    assert.equal(await presented(pop3s, certs.caCertPem), fingerprintOf(certs.server));
    const session = await WireClient.connect(pop3s, { tls: { ca: certs.caCertPem } });
    try {
      assert.match(await session.line(), /^\+OK/);
      assert.match(await session.command(`AUTH XOAUTH2 ${xoauth2(USER, token)}`), /^\+OK Logged in, 2 /);
      assert.match(await session.command('STAT'), /^\+OK 2 /);

      await copyFile(next.certPath, certFile());
      await copyFile(next.keyPath, keyFile());
      proc!.kill('SIGHUP');
      await logged(/TLS certificate reloaded/);
      assert.equal(await presented(pop3s, certs.caCertPem), fingerprintOf(next));

      // The session opened before the reload keeps its connection and its state.
      const [status, body] = await session.multi('RETR 2');
      assert.match(status, /^\+OK/);
      assert.deepEqual(body, ['From: b@example.test', 'Subject: two', '', '.dot line', 'second']);
      const socket = session.socket as TLSSocket;
      assert.equal(socket.getPeerCertificate().fingerprint256, fingerprintOf(certs.server));
      assert.match(await session.command('QUIT'), /^\+OK/);
      await session.waitClosed();
    } finally {
      session.close();
    }
  });

  it('a new login after the reload works, on both listeners', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    for (const url of [`pop3s://127.0.0.1:${pop3s}/1`, `pop3://127.0.0.1:${pop3}/1`]) {
      const r = await curlBearer(url);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, MESSAGES[0]);
    }
  });

  it('a SIGHUP with a broken key file keeps the certificate in use and says so', async () => {
    await writeFile(keyFile(), '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
    proc!.kill('SIGHUP');
    await logged(/TLS reload failed/);
    assert.equal(await presented(pop3s, certs.caCertPem), fingerprintOf(next));
  });

  it('SIGTERM ends the process with 0, and no token reached the log', async () => {
    proc!.kill('SIGTERM');
    const code = await new Promise((r) => proc!.once('exit', r));
    assert.equal(code, 0, stderr);
    assert.ok(!stderr.includes(token), 'the token never reaches the log');
    assert.ok(!stderr.includes(token.split('.')[2]!), 'not even its signature');
  });
});
