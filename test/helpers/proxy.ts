// `popgate proxy` as users run it, for interop tests: a home directory with a config file, app
// passwords created through `popgate proxy passwords add` (recorded in the secret ledger), the
// proxy as a real child process whose listeners, metrics port and audit lines the test reads.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { appendTestLog, removeTempTree, type TreeScanOptions } from './test-log.ts';

export const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;

export interface ProxyHome {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly configFile: string;
  /** Removes the home after copying it to the run's secret scan (test-log.ts scanTreeBeforeRemoval). */
  cleanup(scan?: TreeScanOptions): Promise<void>;
}

/** A fresh HOME with XDG dirs and `config.toml` holding `toml`. */
export async function proxyHome(toml: string, extraEnv: Record<string, string> = {}): Promise<ProxyHome> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-proxy-'));
  const configDir = join(dir, 'config', 'popgate');
  await mkdir(configDir, { recursive: true });
  const configFile = join(configDir, 'config.toml');
  await writeFile(configFile, toml);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_STATE_HOME: join(dir, 'state'),
    ...(process.env.POPGATE_SECRET_LEDGER
      ? { POPGATE_SECRET_LEDGER: process.env.POPGATE_SECRET_LEDGER }
      : {}),
    ...extraEnv,
  };
  // The proxy's files (app passwords, token store, state, self-signed identity) go to the run's
  // secret scan before the home is removed.
  return { dir, env, configFile, cleanup: (scan) => removeTempTree(dir, scan) };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `popgate ARGS` to completion. Its stdout is returned, not logged (it may hold a password). */
export function popgate(home: ProxyHome, args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: home.env, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => {
        appendTestLog('popgate-cli-stderr', stderr);
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** `popgate proxy passwords add`; returns the password shown once (recorded as a test secret). */
export async function addAppPassword(
  home: ProxyHome,
  account: string,
  label: string,
): Promise<{ password: string; id: string }> {
  const r = await popgate(home, ['proxy', 'passwords', 'add', '--account', account, '--label', label]);
  const password = /^ {4}([a-z2-7]{4}(?:-[a-z2-7]{4}){5})$/m.exec(r.stdout)?.[1];
  const id = /, id ([a-z2-7]{4})\)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || password === undefined || id === undefined) {
    throw new Error(`passwords add failed (${r.code}): ${r.stderr}`);
  }
  recordTestSecret(password);
  recordTestSecret(password.replaceAll('-', ''));
  return { password, id };
}

export interface RunningProxy {
  readonly proc: ChildProcess;
  /** The `pop3://` listener's port (first one), if any. */
  readonly pop3: number;
  /** The `pop3s://` listener's port, if any. */
  readonly pop3s: number;
  readonly metrics: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Parsed audit events (pino JSON lines with `audit: true`) so far. */
  audit(): Record<string, unknown>[];
  /** Resolves once an audit event matching `match` has been logged. */
  waitForAudit(
    match: (event: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `popgate proxy ARGS` and resolves once `listeners` listeners are up. */
export async function startProxy(
  home: ProxyHome,
  args: readonly string[] = [],
  listeners = 1,
): Promise<RunningProxy> {
  const proc = spawn(process.execPath, [BIN, 'proxy', ...args], {
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    for (const w of waiters) w();
  });
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 30_000);
    proc.stdout!.on('data', () => {
      if ((out.match(/^listening /gm) ?? []).length >= listeners) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited ${code}: ${err}${out}`));
    });
  });
  const port = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const audit = () =>
    err
      .split('\n')
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    proc,
    pop3: port(/^listening pop3:\/\/127\.0\.0\.1:(\d+)/m),
    pop3s: port(/^listening pop3s:\/\/127\.0\.0\.1:(\d+)/m),
    metrics: port(/^metrics http:\/\/127\.0\.0\.1:(\d+)/m),
    stdout: () => out,
    stderr: () => err,
    audit,
    waitForAudit(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = audit().find(match);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching audit event; stderr: ${err.slice(-2000)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await exited;
      appendTestLog('popgate-proxy-stderr', err);
      appendTestLog('popgate-proxy-stdout', out);
      return code;
    },
  };
}

/** Runs a program to completion (a real client); output is kept for the secret scan. */
export function run(
  file: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        timeout: options.timeout ?? 60_000,
        env: options.env ?? process.env,
        maxBuffer: 64 * 1024 * 1024,
        ...(options.cwd ? { cwd: options.cwd } : {}),
      },
      (error, stdout, stderr) => {
        appendTestLog(`peer-${file.split('/').at(-1)}`, `${stdout}\n${stderr}`);
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}
