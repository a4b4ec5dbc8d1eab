// Client benchmark (issue 2): popgate vs node-pop3 vs Python poplib vs a raw pipelined reader,
// fetching the same maildrops from the same Dovecot over TLS. Runs interleaved, medians.
// Run: node --import tsx bench/client.ts [--rounds N] [--sets small,large] [--node-pop3-large-rounds N]
// Writes bench/results/client.json and bench/client.svg; prints the BENCHMARKS.md tables.
// Every run's byte count is checked against the maildrop: a run that moved less mail fails the
// benchmark instead of being timed (an earlier raw reader half-closed its socket, Dovecot's
// login process hung up before PASS, and 34 bytes in 0.27 s were reported as the wire limit).
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import tls from 'node:tls';
import { Pop3Client } from '../src/client/index.ts';
import { type DovecotInstance, startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { type Contender, formatComparison, ratios, runInterleaved, type Summary } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

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
const ROUNDS = Number(flag('--rounds', '5'));
/** node-pop3 concatenates strings per chunk: about 2 minutes per run of the 5 MiB set. */
const NODE_POP3_LARGE_ROUNDS = Number(flag('--node-pop3-large-rounds', '3'));
const WANTED_SETS = new Set(flag('--sets', 'small,large').split(','));
const OAUTH_USER = 'oauth@example.test';

interface MaildropSet {
  key: string;
  label: string;
  count: number;
  size: number;
  rounds: number;
  /** Chart unit: messages/s where round trips dominate, MB/s where bytes do. */
  unit: 'msg/s' | 'MB/s';
}
const SETS: MaildropSet[] = [
  { key: 'small', label: '2,000 x 10 KiB', count: 2000, size: 10 * 1024, rounds: ROUNDS, unit: 'msg/s' },
  { key: 'large', label: '20 x 5 MiB', count: 20, size: 5 * 1024 * 1024, rounds: ROUNDS, unit: 'MB/s' },
].filter((s): s is MaildropSet => WANTED_SETS.has(s.key));

/** Fails a run that did not move the whole maildrop (`atLeast` octets). */
function checked(name: string, atLeast: number, result: { bytes: number; messages: number }) {
  if (result.bytes < atLeast) {
    throw new Error(`${name} moved ${result.bytes} octets, expected at least ${atLeast}: not a complete run`);
  }
  return result;
}

const POPGATE_XOAUTH2 = 'popgate (XOAUTH2)';
const POPGATE_PASS = 'popgate (USER/PASS)';
const SUBJECTS = [POPGATE_XOAUTH2, POPGATE_PASS];

/**
 * popgate as an application uses it: log in, LIST (sizes for the byte checks and the pipeline's
 * byte window), then pipelined RETR of everything. `login: 'password'` logs in exactly like the
 * raw reader (USER/PASS as Dovecot's password user), so its ratio to the raw reader compares
 * retrieval with retrieval; `'xoauth2'` adds Dovecot's JWT validation to the run.
 */
function popgate(d: DovecotInstance, payload: number, login: 'xoauth2' | 'password'): Contender {
  const name = login === 'xoauth2' ? POPGATE_XOAUTH2 : POPGATE_PASS;
  return {
    name,
    async run() {
      const c = new Pop3Client({
        host: d.host,
        port: d.popsPort,
        tls: 'implicit',
        ca: d.caCertPem,
        servername: 'localhost',
        allowPasswordLogin: login === 'password',
      });
      await c.connect();
      if (login === 'password') {
        await c.loginWithPassword({ user: d.passwordUser.user, password: d.passwordUser.password });
      } else {
        await c.authenticate({
          mechanism: 'XOAUTH2',
          user: OAUTH_USER,
          token: await d.mintToken(OAUTH_USER),
        });
      }
      const list = await c.list();
      let bytes = 0;
      for await (const { stream } of c.retrieveMany(list.map((l) => l.number))) {
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      }
      await c.quit();
      return checked(name, payload, { bytes, messages: list.length });
    },
  };
}

function nodePop3(d: DovecotInstance, count: number, payload: number, maxRounds?: number): Contender {
  return {
    name: 'node-pop3',
    ...(maxRounds === undefined ? {} : { maxRounds }),
    async run() {
      const c = new Pop3Command({
        host: d.host,
        port: d.popsPort,
        tls: true,
        servername: 'localhost',
        tlsOptions: { ca: d.caCertPem },
        user: d.passwordUser.user,
        password: d.passwordUser.password,
      });
      let bytes = 0;
      for (let n = 1; n <= count; n++) bytes += Buffer.byteLength(await c.RETR(n), 'latin1');
      await c.QUIT();
      // node-pop3 drops the line end before the terminator: allow 2 octets per message.
      return checked('node-pop3', payload - 2 * count, { bytes, messages: count });
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

function poplib(d: DovecotInstance, payload: number): Contender {
  return {
    name: 'python poplib',
    run: () =>
      new Promise((resolve, reject) => {
        const child = spawn(
          'python3',
          [
            '-c',
            POPLIB,
            'localhost',
            String(d.popsPort),
            d.caCertPath,
            d.passwordUser.user,
            d.passwordUser.password,
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
              resolve(checked('poplib', payload, { bytes: bytes!, messages }));
            } catch (err) {
              reject(err);
            }
          }
        });
      }),
  };
}

/**
 * The wire limit: every command written at once, answers only counted (no parsing). The socket
 * stays open until Dovecot closes it after QUIT: half-closing it early makes Dovecot's login
 * process hang up before the login (the earlier 0.27 s "wire limit" was that).
 */
function rawReader(d: DovecotInstance, count: number, payload: number): Contender {
  return {
    name: 'raw pipelined reader',
    run: () =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({
          host: d.host,
          port: d.popsPort,
          ca: d.caCertPem,
          servername: 'localhost',
        });
        let bytes = 0;
        socket.on('secureConnect', () => {
          const cmds = [`USER ${d.passwordUser.user}`, `PASS ${d.passwordUser.password}`];
          for (let n = 1; n <= count; n++) cmds.push(`RETR ${n}`);
          cmds.push('QUIT');
          socket.write(`${cmds.join('\r\n')}\r\n`);
        });
        socket.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        socket.on('error', reject);
        socket.on('close', () => {
          try {
            resolve(checked('raw pipelined reader', payload, { bytes, messages: count }));
          } catch (err) {
            reject(err);
          }
        });
      }),
  };
}

interface SetResult {
  summaries: Summary[];
  /** 1-minute load averages when the set started and ended (the machine is shared). */
  load: { start: number; end: number };
}

async function benchSet(set: MaildropSet): Promise<SetResult> {
  const d = await startDovecot({ users: [OAUTH_USER] });
  try {
    const owner = { uid: d.mailUid, gid: d.mailGid };
    let payload = 0;
    for (const user of [OAUTH_USER, d.passwordUser.user]) {
      const written = await writeUniformMessages(await d.maildirOf(user), set.count, set.size, { owner });
      payload = written.reduce((sum, m) => sum + m.wireSize, 0);
    }
    const cap = set.key === 'large' ? NODE_POP3_LARGE_ROUNDS : undefined;
    const contenders = [
      popgate(d, payload, 'xoauth2'),
      popgate(d, payload, 'password'),
      rawReader(d, set.count, payload),
      nodePop3(d, set.count, payload, cap),
      poplib(d, payload),
    ];
    const start = loadavg()[0]!;
    console.error(
      `\n${set.label}: ${set.rounds} interleaved rounds (+1 warm-up)${cap === undefined ? '' : `; node-pop3 capped at ${cap} round(s), no warm-up`}; load average ${start.toFixed(2)}`,
    );
    const summaries = await runInterleaved(contenders, set.rounds, (name, s, round) =>
      console.error(`  round ${round} ${name.padEnd(22)} ${s.seconds.toFixed(3)} s`),
    );
    const end = loadavg()[0]!;
    console.error(`  load average at the end ${end.toFixed(2)}`);
    return { summaries, load: { start, end } };
  } finally {
    await d.stop();
  }
}

const results: Record<string, SetResult> = {};
for (const set of SETS) results[set.label] = await benchSet(set);

const tables = Object.entries(results).map(([label, r]) => formatComparison(label, r.summaries, SUBJECTS));
console.log(tables.join('\n'));
for (const [label, r] of Object.entries(results)) {
  console.log(
    `${label}: load average ${r.load.start.toFixed(2)} at the start, ${r.load.end.toFixed(2)} at the end`,
  );
}
const summary = Object.fromEntries(
  Object.entries(results).map(([label, r]) => [
    label,
    {
      load: r.load,
      summaries: r.summaries,
      popgateSpeedup: Object.fromEntries(SUBJECTS.map((x) => [x, ratios(r.summaries, x)])),
    },
  ]),
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/client.json', import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds: ROUNDS, nodePop3LargeRounds: NODE_POP3_LARGE_ROUNDS, results: summary }, null, 2)}\n`,
);
const unitOf = new Map(SETS.map((s) => [s.label, s.unit]));
await writeFile(
  new URL('./client.svg', import.meta.url),
  barChartSvg(
    'POP3 clients over TLS against Dovecot 2.3, same maildrop (median; longer is faster)',
    'msg/s',
    Object.entries(results).map(([label, r]) => {
      const unit = unitOf.get(label) ?? 'msg/s';
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
