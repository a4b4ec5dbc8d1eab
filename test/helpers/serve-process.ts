// `popgate serve` as a real child process for tests that need the CLI, a second server process
// on the same Maildirs, or a SIGKILL: a TOML config with a pop3s listener on port 0, the test CA's
// certificate, a Maildir store and an issuer whose keys are a JWKS file (no network), plus a
// token minter for that issuer. Minted tokens go to the secret ledger; the child's output goes to
// the secret scan through appendTestLog.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { createTestCerts, type TestCerts } from './certs.ts';
import { appendTestLog } from './test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const ISSUER = 'https://issuer.example.test';
const AUDIENCE = 'pop3://popgate.test';

export interface ServeSetup {
  readonly dir: string;
  /** The store root: each user's Maildir is `<mailRoot>/<user>/`. */
  readonly mailRoot: string;
  readonly configPath: string;
  readonly certs: TestCerts;
  /** A bearer token for `user` (scope pop3, 1 h), recorded in the secret ledger. */
  mintToken(user: string): Promise<string>;
}

/** Writes the certificates, the JWKS file and the config under a fresh temp dir (removed after). */
export async function prepareServe(t: Pick<TestContext, 'after'>): Promise<ServeSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-serve-proc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const certs = await createTestCerts(t);
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  const mailRoot = join(dir, 'mail');
  const configPath = join(dir, 'popgate.toml');
  await writeFile(
    configPath,
    [
      '[server]',
      'listen = ["pop3s://127.0.0.1:0"]',
      `tls_cert = ${JSON.stringify(certs.server.certPath)}`,
      `tls_key = ${JSON.stringify(certs.server.keyPath)}`,
      `store = ${JSON.stringify(`maildir:${mailRoot}`)}`,
      'shutdown_grace_seconds = 1',
      '',
      '[[server.issuers]]',
      `issuer = ${JSON.stringify(ISSUER)}`,
      `audience = ${JSON.stringify(AUDIENCE)}`,
      `jwks = ${JSON.stringify(join(dir, 'jwks.json'))}`,
      '',
    ].join('\n'),
  );
  return {
    dir,
    mailRoot,
    configPath,
    certs,
    async mintToken(user) {
      const token = await new SignJWT({ scope: 'pop3', email: user, client_id: 'serve-process-test' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(`sub-${user}`)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(pair.privateKey);
      recordTestSecret(token);
      return token;
    },
  };
}

export interface ServeProcess {
  readonly child: ChildProcess;
  /** The pop3s port it listens on. */
  readonly port: number;
  /** Everything it wrote to stderr so far (pino JSON lines). */
  stderr(): string;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `popgate serve --config FILE` and resolves once it listens; SIGKILLed after the test. */
export async function startServe(t: Pick<TestContext, 'after'>, setup: ServeSetup): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', setup.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      appendTestLog('serve-process', stdout + stderr);
      resolve({ code, signal });
    }),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
    const check = () => {
      const match = /^listening pop3s:\/\/127\.0\.0\.1:(\d+)$/m.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve(Number(match[1]));
    };
    child.stdout!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return { child, port, stderr: () => stderr, exited };
}
