// Client benchmark (issue 2): popgate vs node-pop3 vs Python poplib vs a raw pipelined reader,
// fetching the same maildrops from the same Dovecot over TLS. Runs interleaved, medians.
// Run: node --import tsx bench/client.ts [--rounds N]
// Writes bench/results/client.json and bench/client.svg; prints the BENCHMARKS.md tables.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import tls from 'node:tls';
import { Pop3Client } from '../src/client/index.ts';
import { type DovecotInstance, startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { type Contender, formatTable, ratios, runInterleaved, type Summary } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

const require = createRequire(import.meta.url);
type NodePop3 = {
  UIDL(): Promise<unknown>;
  RETR(n: number): Promise<string>;
  QUIT(): Promise<unknown>;
  STAT(): Promise<string>;
};
const Pop3Command = require('node-pop3') as new (o: Record<string, unknown>) => NodePop3;

const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 5;
const OAUTH_USER = 'oauth@example.test';

interface MaildropSet {
  label: string;
  count: number;
  size: number;
  rounds: number;
}
const SETS: MaildropSet[] = [
  { label: '2,000 x 10 KiB', count: 2000, size: 10 * 1024, rounds: ROUNDS },
  { label: '20 x 5 MiB', count: 20, size: 5 * 1024 * 1024, rounds: ROUNDS },
];

function popgate(d: DovecotInstance): Contender {
  return {
    name: 'popgate',
    async run() {
      const c = new Pop3Client({
        host: d.host,
        port: d.popsPort,
        tls: 'implicit',
        ca: d.caCertPem,
        servername: 'localhost',
      });
      await c.connect();
      await c.authenticate({ mechanism: 'XOAUTH2', user: OAUTH_USER, token: await d.mintToken(OAUTH_USER) });
      const list = await c.list();
      let bytes = 0;
      for await (const { stream } of c.retrieveMany(list.map((l) => l.number))) {
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      }
      await c.quit();
      return { bytes, messages: list.length };
    },
  };
}

function nodePop3(d: DovecotInstance, count: number): Contender {
  return {
    name: 'node-pop3',
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
      return { bytes, messages: count };
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

function poplib(d: DovecotInstance): Contender {
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
          else resolve({ bytes: bytes!, messages });
        });
      }),
  };
}

/** The wire limit: every command written at once, answers only counted (no parsing). */
function rawReader(d: DovecotInstance, count: number): Contender {
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
          socket.end(`${cmds.join('\r\n')}\r\n`);
        });
        socket.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        socket.on('error', reject);
        socket.on('close', () => resolve({ bytes, messages: count }));
      }),
  };
}

async function benchSet(set: MaildropSet): Promise<Summary[]> {
  const d = await startDovecot({ users: [OAUTH_USER] });
  try {
    const owner = { uid: d.mailUid, gid: d.mailGid };
    for (const user of [OAUTH_USER, d.passwordUser.user]) {
      await writeUniformMessages(await d.maildirOf(user), set.count, set.size, { owner });
    }
    const contenders = [popgate(d), rawReader(d, set.count), nodePop3(d, set.count), poplib(d)];
    console.error(`\n${set.label}: ${set.rounds} interleaved rounds (+1 warm-up)`);
    return await runInterleaved(contenders, set.rounds, (name, s, round) =>
      console.error(`  round ${round} ${name.padEnd(22)} ${s.seconds.toFixed(3)} s`),
    );
  } finally {
    await d.stop();
  }
}

const results: Record<string, Summary[]> = {};
for (const set of SETS) results[set.label] = await benchSet(set);

const tables = Object.entries(results).map(([label, s]) => formatTable(label, s, 'popgate'));
console.log(tables.join('\n'));
const summary = Object.fromEntries(
  Object.entries(results).map(([label, s]) => [
    label,
    { summaries: s, popgateSpeedup: ratios(s, 'popgate') },
  ]),
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/client.json', import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds: ROUNDS, results: summary }, null, 2)}\n`,
);
await writeFile(
  new URL('./client.svg', import.meta.url),
  barChartSvg(
    'POP3 client throughput over TLS against Dovecot 2.3 (messages/s, median)',
    'msg/s',
    Object.entries(results).map(([label, s]) => ({
      label,
      bars: s.map((x) => ({ name: x.name, value: x.messagesPerSecond })),
    })),
  ),
);
