// Server benchmark (issue 5). One run:
// 1. Throughput: the same raw pipelined reader (UIDL and RETR 1..n in one write) fetches the same
//    Maildir from popgate's POP3 server (own process) and from a real Dovecot 2.3, both over
//    implicit TLS with the same certificate; interleaved rounds (bench/lib/stats.ts), medians.
//    Beside wall time, each server's CPU time per message is read from /proc (popgate's process;
//    Dovecot's whole process tree: login, pop3, auth), which a loaded machine disturbs far less.
//    A third contender is popgate with syncReadMaxBytes 0 (every file read through libuv's
//    thread pool, as before the blocking small-file reads).
// 2. Logins per second through popgate with the real validator: JWT (keys cached) and opaque
//    tokens with cached introspection (oidc-provider); rounds interleaved, medians.
// 3. Memory per idle session: a fresh popgate process, 1,000 TLS sessions opened and greeted;
//    heap and RSS deltas after forced GCs (--expose-gc), median of several samples.
//
// Run: node --import tsx bench/server.ts [--quick] [--rounds N] [--svg bench/server.svg]

import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { startAuthorizationServer } from '../dev/authorization-server/index.ts';
//        [--json bench/results/server.json]
import { devValidatorIssuer } from '../dev/validator-issuer.ts';
import { createTokenValidator } from '../src/auth/index.ts';
import type { TokenValidator } from '../src/auth/types.ts';
import { createPop3Server } from '../src/server/server.ts';
import { MaildirStore, type MaildirStoreOptions } from '../src/store/maildir-store.ts';
import { startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { deviceLogin, nativeAccount } from '../test/helpers/oidc.ts';
import { pipelinedFetch, rawLogin, TableValidator, xoauth2 } from '../test/unit/server-helpers.ts';
import { type Contender, median, runInterleaved, type Summary } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

const USER = 'alice@example.test';
/** The logins figure's user: a small maildrop (10 messages), the same Maildir for both servers. */
const LOGIN_USER = 'bob@example.test';
const args = process.argv.slice(2);
const quick = args.includes('--quick');
function flag(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

// --- child mode: a popgate server in its own process -------------------------------------------
interface ChildConfig {
  root: string;
  cert: string;
  key: string;
  store?: MaildirStoreOptions;
  validator: { kind: 'table'; token: string } | { kind: 'real'; options: Record<string, unknown> };
}

interface MemorySample {
  rss: number;
  heap: number;
  external: number;
  sessions: number;
}

async function child(config: ChildConfig): Promise<void> {
  let validator: TokenValidator;
  if (config.validator.kind === 'table') {
    const table = new TableValidator();
    table.tokens.set(config.validator.token, { user: USER });
    validator = table;
  } else {
    validator = createTokenValidator(config.validator.options);
  }
  const server = createPop3Server({
    listen: ['pop3s://127.0.0.1:0'],
    tls: { cert: config.cert, key: config.key },
    validator,
    store: new MaildirStore(config.root, config.store ?? {}),
    limits: { maxConnectionsPerIp: 10_000, maxConnections: 10_000, maxConnectionsPerUser: 10_000 },
  });
  const [address] = await server.listen();
  process.on('message', (msg: string) => {
    if (msg !== 'mem') return;
    // Two full collections: the first may leave finalizable objects for the second.
    global.gc?.();
    global.gc?.();
    const m = process.memoryUsage();
    process.send!({
      rss: m.rss,
      heap: m.heapUsed,
      external: m.external,
      sessions: server.sessionCount,
    } satisfies MemorySample);
  });
  process.send!({ port: address!.port });
}

// --- helpers -----------------------------------------------------------------------------------

function startChild(config: ChildConfig): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(new URL(import.meta.url).pathname, ['--child', JSON.stringify(config)], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve({ proc, port: m.port }));
    proc.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

function memory(proc: ChildProcess): Promise<MemorySample> {
  return new Promise((resolve) => {
    proc.once('message', (m) => resolve(m as MemorySample));
    proc.send('mem');
  });
}

/** CPU seconds (user + system, threads and reaped children included) of `root` and its descendants. */
function treeCpuSeconds(root: number): number {
  const procs = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime), counted from after the name.
      procs.set(Number(name), {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      });
    } catch {
      // The process ended meanwhile; its time went to its parent's cutime.
    }
  }
  let ticks = 0;
  for (const [pid, p] of procs) {
    let at: number | undefined = pid;
    for (let depth = 0; depth < 16 && at !== undefined && at !== root; depth++) at = procs.get(at)?.ppid;
    if (at === root) ticks += p.ticks;
  }
  return ticks / 100; // USER_HZ
}

/** The pid of the Dovecot master started for `dir` (its command line names its config there). */
function dovecotMasterPid(dir: string): number {
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1');
      if (cmd.split('\0')[0]?.endsWith('dovecot') && cmd.includes(dir)) return Number(name);
    } catch {}
  }
  throw new Error('Dovecot master process not found');
}

/**
 * Waits (up to 1 s) until `root` is back to `target` descendants: the session's processes ended
 * and were reaped, so their CPU time is in the tree's figure. Synchronous, because it runs in
 * runInterleaved's sample callback, after the timed part.
 */
function settle(root: number, target: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 50 && descendants(root) > target; i++) Atomics.wait(pause, 0, 0, 20);
}

/** How many processes descend from `root`. */
function descendants(root: number): number {
  let n = 0;
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  for (const pid of parents.keys()) {
    let at: number | undefined = pid;
    for (let depth = 0; depth < 16 && at !== undefined && at !== root; depth++) at = parents.get(at);
    if (at === root && pid !== root) n += 1;
  }
  return n;
}

/** One pipelined fetch of the whole maildrop; fails unless every message arrived. */
async function fetchAll(port: number, authLine: string, ca: string, count: number, atLeast: number) {
  const socket: Socket = await rawLogin(port, authLine, ca);
  const { bytes } = await pipelinedFetch(socket, count);
  socket.end('QUIT\r\n');
  await new Promise((r) => socket.once('close', r));
  if (bytes < atLeast) throw new Error(`moved ${bytes} octets, expected at least ${atLeast}`);
  return { bytes, messages: count };
}

async function loginsPerSecond(port: number, ca: string, authLine: string, total: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const s = await rawLogin(port, authLine, ca);
    s.end('QUIT\r\n');
    await new Promise((r) => s.once('close', r));
  }
  return total / ((performance.now() - started) / 1000);
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

// --- the benchmark -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const COUNT = quick ? 500 : 2000;
  const SIZE = 4096;
  const ROUNDS = Number(flag('--rounds') ?? (quick ? 3 : 7));
  const loadBefore = loadavg();
  console.log(
    `node ${process.version}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; ${COUNT} x ${SIZE} B, ${ROUNDS} interleaved rounds after a warm-up`,
  );
  const dovecot = await startDovecot({ users: [USER, LOGIN_USER], processLimit: 1200 });
  const children: ChildProcess[] = [];
  const results: Record<string, unknown> = {};
  try {
    const maildir = await dovecot.maildirOf(USER);
    await writeUniformMessages(maildir, COUNT, SIZE, {
      owner: { uid: dovecot.mailUid, gid: dovecot.mailGid },
    });
    const root = join(dovecot.dir, 'popgate-root');
    await mkdir(root);
    await symlink(maildir, join(root, USER));
    const small = await dovecot.maildirOf(LOGIN_USER);
    await writeUniformMessages(small, 10, SIZE, { owner: { uid: dovecot.mailUid, gid: dovecot.mailGid } });
    await symlink(small, join(root, LOGIN_USER));
    const ca = dovecot.caCertPem;
    const cert = await readFile(join(dovecot.dir, 'certs', 'dovecot.crt'), 'utf8');
    const key = await readFile(join(dovecot.dir, 'certs', 'dovecot.key'), 'utf8');
    const table = { kind: 'table', token: 'bench-token' } as const;
    const pop = await startChild({ root, cert, key, validator: table });
    children.push(pop.proc);
    const pool = await startChild({ root, cert, key, validator: table, store: { syncReadMaxBytes: 0 } });
    children.push(pool.proc);
    const master = dovecotMasterPid(dovecot.dir);
    const idleTree = descendants(master);

    // 1. Throughput.
    const payload = COUNT * SIZE; // the wire carries more (CRLF, stuffing, status lines)
    const pAuth = `AUTH XOAUTH2 ${xoauth2(USER, 'bench-token')}`;
    const dAuth = `AUTH XOAUTH2 ${xoauth2(USER, await dovecot.mintToken(USER, { expiresIn: 3600 }))}`;
    // CPU is read when a run starts and again in the sample callback, after the timed part (for
    // Dovecot once its session processes are reaped); the warm-up round is not sampled.
    const cpu = new Map<string, number[]>();
    const started = new Map<string, number>();
    const cpuOf = new Map<string, () => number>([
      ['popgate', () => treeCpuSeconds(pop.proc.pid!)],
      ['Dovecot 2.3', () => treeCpuSeconds(master)],
      ['popgate, thread-pool reads', () => treeCpuSeconds(pool.proc.pid!)],
    ]);
    const contender = (name: string, port: number, auth: string): Contender => ({
      name,
      async run() {
        started.set(name, cpuOf.get(name)!());
        return fetchAll(port, auth, ca, COUNT, payload);
      },
    });
    const contenders = [
      contender('popgate', pop.port, pAuth),
      contender('Dovecot 2.3', dovecot.popsPort, dAuth),
      contender('popgate, thread-pool reads', pool.port, pAuth),
    ];
    const summaries: Summary[] = await runInterleaved(contenders, ROUNDS, (name, sample, round) => {
      if (name === 'Dovecot 2.3') settle(master, idleTree);
      const c = (cpuOf.get(name)!() - started.get(name)!) / COUNT;
      cpu.set(name, [...(cpu.get(name) ?? []), c]);
      console.log(
        `  round ${round} ${name}: ${fmt(sample.messages / sample.seconds)} msg/s, ${(c * 1e6).toFixed(0)} us CPU/msg`,
      );
    });
    const byName = (n: string) => summaries.find((s) => s.name === n)!;
    const cpuUs = (n: string) => median(cpu.get(n)!) * 1e6;
    const p = byName('popgate');
    const d = byName('Dovecot 2.3');
    const t = byName('popgate, thread-pool reads');
    const wireMb = (s: Summary) => (s.samples[0]!.bytes / 1e6 / s.medianSeconds).toFixed(1);
    console.log(`\nthroughput, ${COUNT} x 4 KiB, pipelined, implicit TLS (medians of ${ROUNDS}):`);
    console.log('| server | msg/s | MB/s on the wire | server CPU per message | popgate / this |');
    console.log('|---|---:|---:|---:|---:|');
    for (const s of [p, d, t]) {
      const ratio = s === p ? '—' : `${(s.medianSeconds / p.medianSeconds).toFixed(2)}x`;
      console.log(
        `| ${s.name} | ${fmt(s.messagesPerSecond)} | ${wireMb(s)} | ${cpuUs(s.name).toFixed(0)} µs | ${ratio} |`,
      );
    }
    results.throughput = summaries.map((s) => ({
      name: s.name,
      messagesPerSecond: s.messagesPerSecond,
      medianSeconds: s.medianSeconds,
      cpuMicrosPerMessage: cpuUs(s.name),
      samples: s.samples,
    }));

    // 2. Logins per second with real validation.
    const as = await startAuthorizationServer({ accessTokenTtl: 3600 });
    try {
      // A second user with a small maildrop: the figure is about logging in, not scanning the
      // 2,000-message Maildir; one connection at a time (the maildrop lock serialises a user).
      const jwt = (
        await deviceLogin(as, await nativeAccount(as, 'b1', { resource: as.pop3Audience }), LOGIN_USER)
      ).accessToken;
      const opaque = (
        await deviceLogin(as, await nativeAccount(as, 'b2', { resource: as.opaqueAudience }), LOGIN_USER)
      ).accessToken;
      const real = await startChild({
        root,
        cert,
        key,
        validator: {
          kind: 'real',
          options: {
            allowInsecureLoopback: true,
            issuers: [devValidatorIssuer(as)],
          },
        },
      });
      children.push(real.proc);
      const per = quick ? 60 : 150;
      const jwtLine = `AUTH XOAUTH2 ${xoauth2(LOGIN_USER, jwt)}`;
      const opaqueLine = `AUTH XOAUTH2 ${xoauth2(LOGIN_USER, opaque)}`;
      await loginsPerSecond(real.port, ca, jwtLine, 10); // warm-up: JWKS fetch, introspection cache
      await loginsPerSecond(real.port, ca, opaqueLine, 10);
      const dovecotLine = `AUTH XOAUTH2 ${xoauth2(LOGIN_USER, await dovecot.mintToken(LOGIN_USER, { expiresIn: 3600 }))}`;
      await loginsPerSecond(dovecot.popsPort, ca, dovecotLine, 10);
      const jwtRates: number[] = [];
      const introRates: number[] = [];
      const dovecotRates: number[] = [];
      for (let r = 0; r < 3; r++) {
        jwtRates.push(await loginsPerSecond(real.port, ca, jwtLine, per));
        introRates.push(await loginsPerSecond(real.port, ca, opaqueLine, per));
        dovecotRates.push(await loginsPerSecond(dovecot.popsPort, ca, dovecotLine, per));
      }
      console.log(
        `\nlogins/s, one at a time (TLS handshake + AUTH + open maildrop + QUIT), medians of 3 x ${per}: popgate JWT ${fmt(median(jwtRates))}, popgate cached introspection ${fmt(median(introRates))}; Dovecot JWT (local keys) ${fmt(median(dovecotRates))}`,
      );
      results.logins = { jwt: jwtRates, introspection: introRates, dovecotJwt: dovecotRates };
    } finally {
      await as.stop();
    }

    // 3. Memory per idle session, in a fresh server process.
    const N = 1000;
    const mem = await startChild({ root, cert, key, validator: table });
    children.push(mem.proc);
    const samples = async () => {
      const list: MemorySample[] = [];
      for (let i = 0; i < 5; i++) {
        list.push(await memory(mem.proc));
        await new Promise((r) => setTimeout(r, 100));
      }
      return list;
    };
    const before = await samples();
    const sockets: TLSSocket[] = [];
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const s = tlsConnect({ host: '127.0.0.1', port: mem.port, ca, servername: 'localhost' });
          await new Promise<void>((resolve, reject) => {
            s.once('data', () => resolve());
            s.once('error', reject);
          });
          sockets.push(s);
        }),
      );
    }
    const during = await samples();
    const open = median(during.map((m) => m.sessions));
    const delta = (k: keyof MemorySample) =>
      median(during.map((m) => m[k])) - median(before.map((m) => m[k]));
    const kib = (bytes: number) => (bytes / open / 1024).toFixed(1);
    console.log(
      `\nidle sessions: ${open} open (TLS, greeted); per session ${kib(delta('heap'))} KiB JS heap, ${kib(delta('external'))} KiB external, ${kib(delta('rss'))} KiB RSS (medians of 5 samples after forced GCs)`,
    );
    results.idle = { sessions: open, before, during };
    for (const s of sockets) s.destroy();

    const loadAfter = loadavg();
    console.log(`\nload average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
    results.load = { before: loadBefore, after: loadAfter };

    const svgPath = flag('--svg');
    if (svgPath) {
      const svg = barChartSvg(`POP3 server: ${fmt(COUNT)} x 4 KiB, pipelined reader, implicit TLS`, '', [
        {
          label: 'messages/s, median (higher is better)',
          bars: [p, d, t].map((s) => ({ name: s.name, value: Math.round(s.messagesPerSecond) })),
        },
        {
          label: 'server CPU time per message, µs (lower is better)',
          bars: [p, d, t].map((s) => ({ name: s.name, value: cpuUs(s.name) })),
        },
      ]);
      await writeFile(svgPath, svg);
    }
    const jsonPath = flag('--json');
    if (jsonPath) {
      await mkdir(dirname(jsonPath), { recursive: true });
      await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
    }
  } finally {
    for (const c of children) c.kill();
    await dovecot.stop();
  }
}

if (args[0] === '--child') {
  await child(JSON.parse(args[1]!) as ChildConfig);
} else {
  await main();
}
