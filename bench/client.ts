// Client benchmark (issue 2): popgate vs node-pop3 vs Python poplib vs raw pipelined readers,
// fetching the same maildrops from the same Dovecot over TLS. Runs interleaved, medians.
// Measures the built package (dist/, `npm run build` first; `npm run bench` builds).
// Run: node --import tsx bench/client.ts [--rounds N] [--sets small,large] [--rtt MS[,MS...]]
//        [--node-pop3-large-rounds N] [--serial-rtt-budget S]
// --rtt: round-trip times to run the small set at (default 0: loopback, no proxy); above 0 every
// contender connects through bench/lib/delay-proxy.ts (its own process) adding MS/2 each way.
// The large set runs at RTT 0 only. node-pop3 and poplib wait one round trip per message: behind
// the proxy they run at most S / (messages x RTT) rounds (--serial-rtt-budget, default 60 s).
// Writes bench/results/client.json and bench/client.svg; prints the BENCHMARKS.md tables.
// Every run's byte count is checked against the maildrop: a run that moved less mail (a failed
// login included) fails the benchmark instead of being timed (an earlier raw reader half-closed
// its socket, Dovecot's login process hung up before PASS, and 34 bytes in 0.27 s were reported
// as the wire limit). Tokens are minted before the timed runs, one per set, valid for an hour.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import tls from 'node:tls';
import { type DovecotInstance, startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { importBuilt } from './lib/built.ts';
import { type DelayProxy, type DelayStats, spawnDelayProxy } from './lib/delay-proxy.ts';
import {
  type Contender,
  formatComparison,
  median,
  ratios,
  runInterleaved,
  type Summary,
} from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

const { Pop3Client } = await importBuilt<typeof import('../src/client/index.ts')>('client');

const require = createRequire(import.meta.url);
type NodePop3 = {
  UIDL(): Promise<unknown>;
  RETR(n: number): Promise<string>;
  QUIT(): Promise<unknown>;
  STAT(): Promise<string>;
};
const Pop3Command = require('node-pop3') as new (o: Record<string, unknown>) => NodePop3;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
function positive(name: string, value: number, zeroOk = false): number {
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk)) {
    throw new Error(`${name}: expected a ${zeroOk ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}
const ROUNDS = positive('--rounds', Number(flag('--rounds', '5')));
/** node-pop3 concatenates strings per chunk: about 2 minutes per run of the 5 MiB set. */
const NODE_POP3_LARGE_ROUNDS = positive(
  '--node-pop3-large-rounds',
  Number(flag('--node-pop3-large-rounds', '3')),
);
const WANTED_SETS = new Set(flag('--sets', 'small,large').split(','));
const RTTS = [
  ...new Set(
    flag('--rtt', '0')
      .split(',')
      .map((x) => positive('--rtt', Number(x), true)),
  ),
];
/** Seconds of pure round-trip time node-pop3 and poplib may spend per RTT scenario. */
const SERIAL_RTT_BUDGET = positive('--serial-rtt-budget', Number(flag('--serial-rtt-budget', '60')));
const OAUTH_USER = 'oauth@example.test';

interface MaildropSet {
  key: string;
  label: string;
  count: number;
  size: number;
  /** Chart unit: messages/s where round trips dominate, MB/s where bytes do. */
  unit: 'msg/s' | 'MB/s';
  /** Round-trip times this set runs at (ms; 0: straight to Dovecot on loopback). */
  rtts: number[];
}
const SETS: MaildropSet[] = [
  { key: 'small', label: '2,000 x 10 KiB', count: 2000, size: 10 * 1024, unit: 'msg/s', rtts: RTTS },
  {
    key: 'large',
    label: '20 x 5 MiB',
    count: 20,
    size: 5 * 1024 * 1024,
    unit: 'MB/s',
    rtts: RTTS.filter((r) => r === 0),
  },
].filter((s): s is MaildropSet => WANTED_SETS.has(s.key) && s.rtts.length > 0);
if (SETS.length === 0)
  throw new Error('nothing to run: --sets small|large (the large set runs at --rtt 0 only)');

/** Where the contenders connect: Dovecot itself, or the delay proxy in front of it. */
interface Endpoint {
  host: string;
  port: number;
}

/** What a scenario's contenders share: the maildrop, the logins, the token minted before timing. */
interface Shared {
  d: DovecotInstance;
  at: Endpoint;
  count: number;
  payload: number;
  token: string;
}

/** Fails a run that did not move the whole maildrop (`atLeast` octets). */
function checked(name: string, atLeast: number, result: { bytes: number; messages: number }) {
  if (result.bytes < atLeast) {
    throw new Error(`${name} moved ${result.bytes} octets, expected at least ${atLeast}: not a complete run`);
  }
  return result;
}

type Login = 'xoauth2' | 'password';
const POPGATE: Record<Login, string> = { xoauth2: 'popgate (XOAUTH2)', password: 'popgate (USER/PASS)' };
const RAW: Record<Login, string> = { xoauth2: 'raw reader (XOAUTH2)', password: 'raw reader (USER/PASS)' };
const SUBJECTS = [POPGATE.xoauth2, POPGATE.password];

/** A popgate client for the set's endpoint (direct or through the delay proxy). */
function popgateClient(s: Shared, allowPasswordLogin: boolean) {
  return new Pop3Client({
    host: s.at.host,
    port: s.at.port,
    tls: 'implicit',
    ca: s.d.caCertPem,
    servername: 'localhost',
    allowPasswordLogin,
  });
}

/**
 * popgate as an application uses it: log in, LIST (sizes for the byte checks and the pipeline's
 * byte window), then pipelined RETR of everything. Its ratio is taken against the raw reader with
 * the same login: `'password'` is USER/PASS as Dovecot's password user, `'xoauth2'` the JWT that
 * Dovecot validates (passdb oauth2), so the login's cost at Dovecot is on both sides.
 */
function popgate(s: Shared, login: Login): Contender {
  const name = POPGATE[login];
  return {
    name,
    async run() {
      const c = popgateClient(s, login === 'password');
      await c.connect();
      if (login === 'password') {
        await c.loginWithPassword({ user: s.d.passwordUser.user, password: s.d.passwordUser.password });
      } else {
        await c.authenticate({ mechanism: 'XOAUTH2', user: OAUTH_USER, token: s.token });
      }
      const list = await c.list();
      let bytes = 0;
      for await (const { stream } of c.retrieveMany(list.map((l) => l.number))) {
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      }
      await c.quit();
      return checked(name, s.payload, { bytes, messages: list.length });
    },
  };
}

function nodePop3(s: Shared, maxRounds?: number): Contender {
  return {
    name: 'node-pop3',
    ...(maxRounds === undefined ? {} : { maxRounds }),
    async run() {
      const c = new Pop3Command({
        host: s.at.host,
        port: s.at.port,
        tls: true,
        servername: 'localhost',
        tlsOptions: { ca: s.d.caCertPem },
        user: s.d.passwordUser.user,
        password: s.d.passwordUser.password,
      });
      let bytes = 0;
      for (let n = 1; n <= s.count; n++) bytes += Buffer.byteLength(await c.RETR(n), 'latin1');
      await c.QUIT();
      // node-pop3 drops the line end before the terminator: allow 2 octets per message.
      return checked('node-pop3', s.payload - 2 * s.count, { bytes, messages: s.count });
    },
  };
}

const POPLIB = `
import poplib, ssl, sys
host, port, ca, user, pw = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
p = poplib.POP3_SSL(host, int(port), context=ctx)
p.user(user); p.pass_(pw)
count, _ = p.stat()
total = 0
for n in range(1, count + 1):
    resp, lines, octets = p.retr(n)
    total += octets
p.quit()
print(count, total)
`;

function poplib(s: Shared, maxRounds?: number): Contender {
  return {
    name: 'python poplib',
    ...(maxRounds === undefined ? {} : { maxRounds }),
    run: () =>
      new Promise((resolve, reject) => {
        const child = spawn(
          'python3',
          [
            '-c',
            POPLIB,
            'localhost',
            String(s.at.port),
            s.d.caCertPath,
            s.d.passwordUser.user,
            s.d.passwordUser.password,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
        });
        child.on('error', reject);
        child.on('close', (code) => {
          const [messages, bytes] = out.trim().split(' ').map(Number);
          if (code !== 0 || !messages) reject(new Error(`poplib exited ${code}`));
          else {
            try {
              // poplib's octets count the line ends it strips (2 per line): at least the payload.
              resolve(checked('poplib', s.payload, { bytes: bytes!, messages }));
            } catch (err) {
              reject(err);
            }
          }
        });
      }),
  };
}

/** XOAUTH2's initial response: base64 of `user=U^Aauth=Bearer T^A^A`. */
function xoauth2Response(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

/**
 * The wire limit: the login and every RETR in one write, answers only counted, not parsed.
 * `'password'` logs in with USER and PASS, `'xoauth2'` with `AUTH XOAUTH2 <initial response>`
 * (Dovecot reads the pipelined commands after it once the login succeeds; a refused login leaves
 * a few hundred octets and fails the byte check). QUIT follows once the last answer's
 * terminator has arrived (terminators are counted, the only thing the reader looks at: dot-
 * stuffing keeps CRLF.CRLF out of bodies): with QUIT in the first write, Dovecot's login proxy
 * now and then closed the TLS connection before the last few hundred octets of a 5 MiB answer
 * were out. The socket stays open until Dovecot closes it after QUIT: half-closing it early
 * makes Dovecot's login process hang up before the login (the earlier 0.27 s "wire limit").
 */
function rawReader(s: Shared, login: Login): Contender {
  const name = RAW[login];
  const loginCommands =
    login === 'password'
      ? [`USER ${s.d.passwordUser.user}`, `PASS ${s.d.passwordUser.password}`]
      : [`AUTH XOAUTH2 ${xoauth2Response(OAUTH_USER, s.token)}`];
  const TERMINATOR = Buffer.from('\r\n.\r\n');
  return {
    name,
    run: () =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({
          host: s.at.host,
          port: s.at.port,
          ca: s.d.caCertPem,
          servername: 'localhost',
        });
        let bytes = 0;
        let answers = 0;
        let tail: Buffer = Buffer.alloc(0); // the last octets of the previous chunk, for split terminators
        socket.on('secureConnect', () => {
          const cmds = [...loginCommands];
          for (let n = 1; n <= s.count; n++) cmds.push(`RETR ${n}`);
          socket.write(`${cmds.join('\r\n')}\r\n`);
        });
        socket.on('data', (c: Buffer) => {
          bytes += c.length;
          if (answers === s.count) return;
          const window = tail.length > 0 ? Buffer.concat([tail, c]) : c;
          for (let at = window.indexOf(TERMINATOR); at !== -1; at = window.indexOf(TERMINATOR, at + 3)) {
            answers++;
          }
          tail = window.subarray(Math.max(0, window.length - (TERMINATOR.length - 1)));
          if (answers === s.count) socket.write('QUIT\r\n');
        });
        socket.on('error', reject);
        socket.on('close', () => {
          try {
            resolve(checked(name, s.payload, { bytes, messages: s.count }));
          } catch (err) {
            reject(err);
          }
        });
      }),
  };
}

/**
 * The round trip the contenders see (ms): median of sequential NOOPs in one popgate session
 * (TLS, POP3 and Dovecot included), measured outside the timed runs.
 */
async function noopRoundTrip(s: Shared, probes = 25): Promise<number> {
  const c = popgateClient(s, true);
  await c.connect();
  await c.loginWithPassword({ user: s.d.passwordUser.user, password: s.d.passwordUser.password });
  const times: number[] = [];
  for (let i = 0; i < probes; i++) {
    const start = process.hrtime.bigint();
    await c.noop();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  await c.quit();
  return median(times);
}

interface ScenarioResult {
  set: string;
  /** Added round-trip time (ms): half of it each way through the delay proxy; 0 means no proxy. */
  rttMs: number;
  /** Median NOOP round trip through the same path, measured before the timed runs. */
  noopRttMs: number;
  /** Rounds of node-pop3 and poplib when capped (serial round trips or the large set). */
  caps: Record<string, number>;
  /** How late the proxy released chunks after their due time (absent without a proxy). */
  delay?: DelayStats;
  summaries: Summary[];
  /** 1-minute load averages when the scenario started and ended (the machine is shared). */
  load: { start: number; end: number };
}

function scenarioLabel(set: MaildropSet, rttMs: number): string {
  return rttMs === 0 ? set.label : `${set.label}, RTT ${rttMs} ms`;
}

async function runScenario(
  set: MaildropSet,
  rttMs: number,
  base: Omit<Shared, 'at'>,
): Promise<ScenarioResult> {
  const label = scenarioLabel(set, rttMs);
  let proxy: DelayProxy | undefined;
  let delay: DelayStats | undefined;
  try {
    if (rttMs > 0) {
      proxy = await spawnDelayProxy({
        target: { host: base.d.host, port: base.d.popsPort },
        oneWayMs: rttMs / 2,
      });
    }
    const s: Shared = { ...base, at: { host: base.d.host, port: proxy?.port ?? base.d.popsPort } };
    const caps: Record<string, number> = {};
    if (set.key === 'large') caps['node-pop3'] = NODE_POP3_LARGE_ROUNDS;
    if (rttMs > 0) {
      // One round trip per message: cap the serial clients at the budget (at least one round).
      const rounds = Math.max(1, Math.floor((SERIAL_RTT_BUDGET * 1000) / (set.count * rttMs)));
      if (rounds < ROUNDS) caps['node-pop3'] = caps['python poplib'] = rounds;
    }
    const contenders = [
      popgate(s, 'xoauth2'),
      popgate(s, 'password'),
      rawReader(s, 'xoauth2'),
      rawReader(s, 'password'),
      nodePop3(s, caps['node-pop3']),
      poplib(s, caps['python poplib']),
    ];
    const noopRttMs = await noopRoundTrip(s);
    const start = loadavg()[0]!;
    const capText = Object.entries(caps)
      .map(([name, n]) => `; ${name} capped at ${n} round(s), no warm-up`)
      .join('');
    console.error(
      `\n${label}: ${ROUNDS} interleaved rounds (+1 warm-up)${capText}; NOOP round trip ${noopRttMs.toFixed(3)} ms; load average ${start.toFixed(2)}`,
    );
    const summaries = await runInterleaved(
      contenders,
      ROUNDS,
      (name, sample, round) =>
        console.error(`  round ${round} ${name.padEnd(24)} ${sample.seconds.toFixed(3)} s`),
      // Dovecot's pop3 process and Python exit after QUIT: let that finish before the next run.
      { settleMs: 200 },
    );
    const end = loadavg()[0]!;
    console.error(`  load average at the end ${end.toFixed(2)}`);
    delay = await proxy?.stop();
    proxy = undefined;
    if (delay) {
      console.error(
        `  proxy: ${delay.chunks} chunks released ${delay.lateP50Us.toFixed(0)} µs (median), ${delay.lateP99Us.toFixed(0)} µs (p99) after due`,
      );
    }
    return {
      set: set.key,
      rttMs,
      noopRttMs,
      caps,
      ...(delay ? { delay } : {}),
      summaries,
      load: { start, end },
    };
  } finally {
    await proxy?.stop();
  }
}

async function benchSet(set: MaildropSet): Promise<Record<string, ScenarioResult>> {
  const d = await startDovecot({ users: [OAUTH_USER] });
  try {
    const owner = { uid: d.mailUid, gid: d.mailGid };
    let payload = 0;
    for (const user of [OAUTH_USER, d.passwordUser.user]) {
      const written = await writeUniformMessages(await d.maildirOf(user), set.count, set.size, { owner });
      payload = written.reduce((sum, m) => sum + m.wireSize, 0);
    }
    // One token for every XOAUTH2 contender, minted before any timing, valid for the whole set.
    const token = await d.mintToken(OAUTH_USER, { expiresIn: 3600 });
    const out: Record<string, ScenarioResult> = {};
    for (const rttMs of set.rtts) {
      out[scenarioLabel(set, rttMs)] = await runScenario(set, rttMs, { d, count: set.count, payload, token });
    }
    return out;
  } finally {
    await d.stop();
  }
}

/** Each popgate variant's time over the raw reader's with the same login (<= 1.2: the target). */
function timeOverRaw(summaries: readonly Summary[]): Record<string, number> {
  const time = (name: string) => summaries.find((x) => x.name === name)?.medianSeconds ?? Number.NaN;
  return Object.fromEntries(
    (Object.keys(POPGATE) as Login[]).map((login) => [
      POPGATE[login],
      time(POPGATE[login]) / time(RAW[login]),
    ]),
  );
}

const results: Record<string, ScenarioResult> = {};
for (const set of SETS) Object.assign(results, await benchSet(set));

const tables = Object.entries(results).map(([label, r]) => formatComparison(label, r.summaries, SUBJECTS));
console.log(tables.join('\n'));
for (const [label, r] of Object.entries(results)) {
  const overRaw = timeOverRaw(r.summaries);
  console.log(
    `${label}: ${(Object.keys(POPGATE) as Login[])
      .map((login) => `${POPGATE[login]} ${overRaw[POPGATE[login]]!.toFixed(2)}x the time of ${RAW[login]}`)
      .join('; ')}`,
  );
  console.log(
    `${label}: NOOP round trip ${r.noopRttMs.toFixed(3)} ms${r.rttMs > 0 ? ` (${r.rttMs} ms added by the proxy)` : ''}; load average ${r.load.start.toFixed(2)} at the start, ${r.load.end.toFixed(2)} at the end`,
  );
}
const summary = Object.fromEntries(
  Object.entries(results).map(([label, r]) => [
    label,
    {
      ...r,
      popgateSpeedup: Object.fromEntries(SUBJECTS.map((x) => [x, ratios(r.summaries, x)])),
      popgateTimeOverRawSameLogin: timeOverRaw(r.summaries),
    },
  ]),
);
const json = JSON.stringify(
  {
    date: new Date().toISOString(),
    node: process.version,
    rounds: ROUNDS,
    nodePop3LargeRounds: NODE_POP3_LARGE_ROUNDS,
    rttMs: RTTS,
    serialRttBudgetSeconds: SERIAL_RTT_BUDGET,
    results: summary,
  },
  null,
  2,
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/client.json', import.meta.url),
  // Arrays of numbers on one line, as biome formats them (`npm run lint` checks bench/).
  `${json.replace(/\[\s+([-\d.,\s]+?)\s+\]/g, (_, xs: string) => `[${xs.split(/,\s*/).join(', ')}]`)}\n`,
);
const unitOf = new Map(SETS.map((s) => [s.key, s.unit]));
await writeFile(
  new URL('./client.svg', import.meta.url),
  barChartSvg(
    'POP3 clients over TLS against Dovecot 2.3, same maildrop (median; longer is faster)',
    'msg/s',
    Object.entries(results).map(([label, r]) => {
      const unit = unitOf.get(r.set) ?? 'msg/s';
      return {
        label,
        unit,
        bars: r.summaries.map((x) => ({
          name: x.name,
          value: unit === 'MB/s' ? x.megabytesPerSecond : x.messagesPerSecond,
        })),
      };
    }),
  ),
);
