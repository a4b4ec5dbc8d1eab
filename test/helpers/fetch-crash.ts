// Shared by the fetch crash proofs (fetch-crash-kill, fetch-crash-net): the real CLI as a child
// process with a token file, its JSON output collected, and the end-state check that every
// message is in the Maildir exactly once, byte for byte.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DovecotInstance } from './dovecot.ts';
import type { FixtureMessage } from './mail-fixtures.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;

/** A seeded PRNG so a failing run can be replayed (the seed is printed). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Env {
  dir: string;
  maildir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export async function prepare(
  t: { after(fn: () => Promise<void>): void },
  d: DovecotInstance,
  user: string,
  port: number,
  to?: string,
): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, await d.mintToken(user, { expiresIn: 7200 }), { mode: 0o600 });
  await writeFile(join(dir, 'ca.pem'), d.caCertPem);
  const maildir = to ?? join(dir, 'Maildir');
  const args = [
    'fetch',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--ca',
    join(dir, 'ca.pem'),
    '--user',
    user,
  ];
  args.push('--token-file', tokenFile, '--to', maildir, '--delete', '--json');
  const env = { ...process.env, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') };
  return { dir, maildir, args, env };
}

export interface CliRun {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(e: Env): CliRun {
  const child = spawn(process.execPath, [BIN, ...e.args], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, stderr, exit };
}

export async function runToEnd(
  e: Env,
): Promise<{ code: number | null; events: Record<string, unknown>[]; stderr: string }> {
  const run = startCli(e);
  const { code } = await run.exit;
  return {
    code,
    events: run.lines.filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: run.stderr.join(''),
  };
}

export async function onServer(maildir: string): Promise<number> {
  return (await readdir(join(maildir, 'new'))).length + (await readdir(join(maildir, 'cur'))).length;
}

/** Every fixture exactly once in the Maildir, byte for byte (LF, with a final newline), nothing else. */
export async function assertExactlyOnce(
  maildir: string,
  fixtures: readonly FixtureMessage[],
  contents: Map<string, Buffer>,
): Promise<void> {
  const byId = new Map<string, number>();
  const names = await readdir(join(maildir, 'new'));
  for (const name of names) {
    const bytes = await readFile(join(maildir, 'new', name));
    const id = /^Message-ID:\s*(\S+)/im.exec(bytes.toString('latin1'))?.[1] ?? `?${name}`;
    byId.set(id, (byId.get(id) ?? 0) + 1);
    const expected = contents.get(id);
    assert.ok(expected, `unexpected message ${id}`);
    assert.ok(bytes.equals(expected), `message ${id} differs from the source`);
  }
  for (const f of fixtures)
    assert.equal(byId.get(f.messageId), 1, `${f.messageId} delivered ${byId.get(f.messageId) ?? 0} times`);
  assert.equal(names.length, fixtures.length);
  assert.deepEqual(await readdir(join(maildir, 'tmp')), [], 'nothing left in tmp/');
}

export async function sourceContents(fixtures: readonly FixtureMessage[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const f of fixtures) {
    const lf = Buffer.from((await readFile(f.path)).toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    out.set(f.messageId, f.endsWithNewline ? lf : Buffer.concat([lf, Buffer.from('\n')]));
  }
  return out;
}
