// Proxy benchmark (issue 13): what `popgate proxy` adds to a fetch. The same maildrop fetched
//   - by Python poplib (USER/PASS, one command at a time) from Dovecot directly, as Dovecot's
//     password user, and through the proxy with an app password;
//   - by popgate's client (pipelined retrieveMany) from Dovecot directly with XOAUTH2, and through
//     the proxy with USER/PASS and an app password (the proxy logs in upstream with XOAUTH2).
// Every leg is TLS: clients reach Dovecot on pop3s, and the proxy on its pop3s listener (a test
// CA's certificate), so the client does the same TLS work on both paths and the difference is the
// proxy's own: its login, one more TLS hop, and the relay. The proxy is `popgate proxy` from
// compiled dist/ (POPGATE_RUN_DIST=1) as a child process, as operators run it.
// Targets: through the proxy at most 1.10x the direct time for popgate's pipelined fetch of
// 2,000 x 10 KiB, at most 1.05x for 20 x 5 MiB. poplib's ratios are printed, without a target.
// Run: node --import tsx bench/proxy.ts [--rounds N] [--sets small,large]
// Also reports the proxy process's own CPU seconds per run (/proc/PID/stat), the figure that
// does not depend on how busy the machine is. Writes bench/results/proxy.json and
// bench/proxy.svg; prints the BENCHMARKS.md table.
// Every run's octet count is checked against the maildrop: an incomplete run fails the bench.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createTestCerts } from '../test/helpers/certs.ts';
import { type DovecotInstance, startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { addAppPassword, proxyHome, type RunningProxy, startProxy } from '../test/helpers/proxy.ts';
import { importBuilt } from './lib/built.ts';
import { type Contender, median, runInterleaved, type Summary } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

const { Pop3Client } = await importBuilt<typeof import('../src/client/index.ts')>('client');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const ROUNDS = Number(flag('--rounds', '5'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds: expected a positive integer`);
const WANTED = new Set(flag('--sets', 'small,large').split(','));
const OAUTH_USER = 'oauth@example.test';

interface MaildropSet {
  key: string;
  label: string;
  count: number;
  size: number;
  unit: 'msg/s' | 'MB/s';
  /** The most the proxy may add to popgate's pipelined fetch (time through / time direct). */
  target: number;
}
const ALL_SETS: MaildropSet[] = [
  { key: 'small', label: '2,000 x 10 KiB', count: 2000, size: 10 * 1024, unit: 'msg/s', target: 1.1 },
  { key: 'large', label: '20 x 5 MiB', count: 20, size: 5 * 1024 * 1024, unit: 'MB/s', target: 1.05 },
];
const SETS = ALL_SETS.filter((s) => WANTED.has(s.key));
if (SETS.length === 0) throw new Error('nothing to run: --sets small|large');

const NAMES = {
  poplibDirect: 'poplib direct',
  poplibProxy: 'poplib via proxy',
  popgateDirect: 'popgate direct',
  popgateProxy: 'popgate via proxy',
} as const;

interface Endpoint {
  port: number;
  ca: string;
  user: string;
  password: string;
}

function checked(name: string, atLeast: number, r: { bytes: number; messages: number }) {
  if (r.bytes < atLeast) throw new Error(`${name} moved ${r.bytes} octets, expected at least ${atLeast}`);
  return r;
}

const POPLIB = `
import poplib, ssl, sys
port, ca, user, pw = sys.argv[1:5]
p = poplib.POP3_SSL('localhost', int(port), context=ssl.create_default_context(cafile=ca))
p.user(user); p.pass_(pw)
count, _ = p.stat()
total = 0
for n in range(1, count + 1):
    total += p.retr(n)[2]
p.quit()
print(count, total)
`;

function poplib(name: string, at: Endpoint, payload: number): Contender {
  return {
    name,
    run: () =>
      new Promise((resolve, reject) => {
        const child = spawn('python3', ['-c', POPLIB, String(at.port), at.ca, at.user, at.password], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
        });
        child.on('error', reject);
        child.on('close', (code) => {
          const [messages, bytes] = out.trim().split(' ').map(Number);
          if (code !== 0 || !messages) return reject(new Error(`${name}: poplib exited ${code}`));
          try {
            // poplib's octets count the line ends it strips: at least the payload.
            resolve(checked(name, payload, { bytes: bytes!, messages }));
          } catch (error) {
            reject(error);
          }
        });
      }),
  };
}

/** popgate as an application uses it: log in, LIST, pipelined RETR of everything, QUIT. */
function popgate(
  name: string,
  at: Endpoint,
  payload: number,
  login: (c: InstanceType<typeof Pop3Client>) => Promise<unknown>,
  allowPasswordLogin: boolean,
): Contender {
  return {
    name,
    async run() {
      const c = new Pop3Client({
        host: '127.0.0.1',
        port: at.port,
        tls: 'implicit',
        ca: at.ca,
        servername: 'localhost',
        allowPasswordLogin,
      });
      await c.connect();
      await login(c);
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

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** Wraps a through-the-proxy contender: records the proxy process's CPU seconds per run. */
function withProxyCpu(c: Contender, pid: () => number, into: number[]): Contender {
  return {
    ...c,
    async run() {
      const before = cpuSeconds(pid());
      const r = await c.run();
      into.push(cpuSeconds(pid()) - before);
      return r;
    },
  };
}

interface ScenarioResult {
  set: string;
  label: string;
  summaries: Summary[];
  /** popgate through the proxy over popgate direct; poplib likewise (median times). */
  ratios: { popgate: number; poplib: number };
  target: number;
  load: { start: number; end: number };
  /** The proxy process's CPU seconds per run (median, warm-up excluded), per contender. */
  proxyCpuSeconds: Record<string, number>;
}

async function benchSet(set: MaildropSet): Promise<ScenarioResult> {
  const d: DovecotInstance = await startDovecot({ users: [OAUTH_USER] });
  const certs = await createTestCerts();
  const home = await proxyHome('', { POPGATE_RUN_DIST: '1' });
  let proxy: RunningProxy | undefined;
  try {
    const owner = { uid: d.mailUid, gid: d.mailGid };
    let payload = 0;
    for (const user of [OAUTH_USER, d.passwordUser.user]) {
      const written = await writeUniformMessages(await d.maildirOf(user), set.count, set.size, { owner });
      payload = written.reduce((sum, m) => sum + m.wireSize, 0);
    }
    // One token for the proxy and for popgate direct, minted before any timing, valid an hour.
    const token = await d.mintToken(OAUTH_USER, { expiresIn: 3600 });
    await writeFile(join(home.dir, 'dovecot-ca.pem'), d.caCertPem);
    await writeFile(join(home.dir, 'token'), token, { mode: 0o600 });
    await writeFile(
      home.configFile,
      [
        '[proxy]',
        'listen = ["pop3s://127.0.0.1:0"]',
        `tls_cert = "${certs.server.certPath}"`,
        `tls_key = "${certs.server.keyPath}"`,
        'log_level = "warn"',
        '',
        '[accounts.bench]',
        `user = "${OAUTH_USER}"`,
        'local_user = "bench"',
        'host = "127.0.0.1"',
        `port = ${d.popsPort}`,
        'tls = "implicit"',
        `ca = "${join(home.dir, 'dovecot-ca.pem')}"`,
        'mechanism = "XOAUTH2"',
        `token_file = "${join(home.dir, 'token')}"`,
        '',
      ].join('\n'),
    );
    const { password } = await addAppPassword(home, 'bench', 'bench');
    proxy = await startProxy(home);
    const direct: Endpoint = { port: d.popsPort, ca: d.caCertPath, ...d.passwordUser };
    const viaProxy: Endpoint = { port: proxy.pop3s, ca: certs.caCertPath, user: 'bench', password };
    const pid = () => proxy!.proc.pid!;
    const cpu: Record<string, number[]> = { [NAMES.poplibProxy]: [], [NAMES.popgateProxy]: [] };
    const contenders = [
      poplib(NAMES.poplibDirect, direct, payload),
      withProxyCpu(poplib(NAMES.poplibProxy, viaProxy, payload), pid, cpu[NAMES.poplibProxy]!),
      popgate(
        NAMES.popgateDirect,
        { ...direct, ca: d.caCertPem },
        payload,
        (c) => c.authenticate({ mechanism: 'XOAUTH2', user: OAUTH_USER, token }),
        false,
      ),
      withProxyCpu(
        popgate(
          NAMES.popgateProxy,
          { ...viaProxy, ca: certs.caCertPem },
          payload,
          (c) => c.loginWithPassword({ user: 'bench', password }),
          true,
        ),
        pid,
        cpu[NAMES.popgateProxy]!,
      ),
    ];
    const start = loadavg()[0]!;
    console.error(
      `\n${set.label}: ${ROUNDS} interleaved rounds (+1 warm-up); load average ${start.toFixed(2)}`,
    );
    const summaries = await runInterleaved(
      contenders,
      ROUNDS,
      (name, sample, round) =>
        console.error(`  round ${round} ${name.padEnd(28)} ${sample.seconds.toFixed(3)} s`),
      { settleMs: 200 },
    );
    const end = loadavg()[0]!;
    console.error(`  load average at the end ${end.toFixed(2)}`);
    const time = (name: string) => summaries.find((s) => s.name === name)!.medianSeconds;
    return {
      set: set.key,
      label: set.label,
      summaries,
      ratios: {
        popgate: time(NAMES.popgateProxy) / time(NAMES.popgateDirect),
        poplib: time(NAMES.poplibProxy) / time(NAMES.poplibDirect),
      },
      target: set.target,
      load: { start, end },
      // The first sample is the warm-up round's.
      proxyCpuSeconds: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v.slice(1))])),
    };
  } finally {
    await proxy?.stop();
    await home.cleanup();
    await certs.cleanup();
    await d.stop();
  }
}

const results: ScenarioResult[] = [];
for (const set of SETS) results.push(await benchSet(set));

for (const r of results) {
  console.log(`### ${r.label} (load average ${r.load.start.toFixed(2)} -> ${r.load.end.toFixed(2)})\n`);
  console.log('| client | median s | messages/s | MB/s |');
  console.log('|---|---:|---:|---:|');
  for (const s of r.summaries) {
    console.log(
      `| ${s.name} | ${s.medianSeconds.toFixed(3)} | ${s.messagesPerSecond.toFixed(0)} | ${s.megabytesPerSecond.toFixed(1)} |`,
    );
  }
  const verdict = r.ratios.popgate <= r.target ? 'within' : 'MISSES';
  console.log(
    `\nproxy CPU per run (median): ${Object.entries(r.proxyCpuSeconds)
      .map(([k, v]) => `${k} ${v.toFixed(2)} s`)
      .join(', ')}`,
  );
  console.log(
    `${r.label}: popgate through the proxy ${r.ratios.popgate.toFixed(3)}x the direct time (target <= ${r.target.toFixed(2)}x: ${verdict}); poplib ${r.ratios.poplib.toFixed(3)}x\n`,
  );
}

const json = JSON.stringify(
  { date: new Date().toISOString(), node: process.version, rounds: ROUNDS, results },
  null,
  2,
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/proxy.json', import.meta.url),
  `${json.replace(/\[\s+([-\d.,\s]+?)\s+\]/g, (_, xs: string) => `[${xs.split(/,\s*/).join(', ')}]`)}\n`,
);
const unitOf = new Map(SETS.map((s) => [s.key, s.unit]));
await writeFile(
  new URL('./proxy.svg', import.meta.url),
  barChartSvg(
    'Direct to Dovecot vs through popgate proxy, all legs TLS (median; longer is faster)',
    'msg/s',
    results.map((r) => {
      const unit = unitOf.get(r.set) ?? 'msg/s';
      return {
        label: `${r.label}: popgate via proxy ${r.ratios.popgate.toFixed(2)}x time, poplib ${r.ratios.poplib.toFixed(2)}x (load ${r.load.start.toFixed(1)})`,
        unit,
        bars: r.summaries.map((x) => ({
          name: x.name,
          value: unit === 'MB/s' ? x.megabytesPerSecond : x.messagesPerSecond,
        })),
      };
    }),
  ),
);
