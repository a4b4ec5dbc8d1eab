// Fetcher benchmark (issue 4): 2,000 small messages from the same Dovecot 2.3 into a fresh
// Maildir, fsynced, by
//   - popgate fetch (the CLI as a child process; OAuth, XOAUTH2 with a minted JWT),
//   - popgate's fetch engine in-process (runAccount) with OAuth and with the password user (SASL PLAIN),
//   - fetchmail 6.4 with a Maildir MDA (a shell script: dd conv=fsync into tmp/, rename into new/),
//     measured in one round only (--peer-rounds) because it takes minutes on a loaded machine,
// fetchmail has no POP3 OAuth, so it logs in as the harness's password user. getmail6 is not in
// the run: started from here it fails every delivery with "waiting child pid N timed out" (its
// forked Maildir delivery child is never reaped); see BENCHMARKS.md.
// Rounds are interleaved in rotating order after one warm-up; medians of wall and CPU time
// (user+sys of the child from /usr/bin/time; process.cpuUsage for in-process runs).
//
//   node --import tsx bench/fetch.ts [--rounds 3] [--count 2000] [--size 4096]
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAccount } from '../src/fetch/run-account.ts';
import { startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { median } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const ROUNDS = Number(flag('--rounds', '3'));
const COUNT = Number(flag('--count', '2000'));
const SIZE = Number(flag('--size', '4096'));
const PEER_ROUNDS = Number(flag('--peer-rounds', '1'));
const ROOT = new URL('..', import.meta.url).pathname;

interface Sample {
  wall: number;
  cpu: number;
}

/** Runs a command under /usr/bin/time; resolves wall and user+sys seconds of the child. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    execFile(
      '/usr/bin/time',
      ['-f', 'TIME %U %S', cmd, ...args],
      { env, maxBuffer: 1 << 26 },
      (error, _stdout, stderr) => {
        const wall = Number(process.hrtime.bigint() - start) / 1e9;
        const m = /TIME ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
        if (error || !m) {
          reject(new Error(`${cmd} failed: ${error?.message ?? ''}\n${stderr.slice(-2000)}`));
          return;
        }
        resolve({ wall, cpu: Number(m[1]) + Number(m[2]) });
      },
    );
  });
}

async function count(maildir: string): Promise<number> {
  return (await readdir(join(maildir, 'new'))).length + (await readdir(join(maildir, 'cur'))).length;
}

const d = await startDovecot({ users: ['oauth@example.test'] });
const work = await mkdtemp(join(tmpdir(), 'popgate-bench-fetch-'));
try {
  const owner = { uid: d.mailUid, gid: d.mailGid };
  await writeUniformMessages(await d.maildirOf('oauth@example.test'), COUNT, SIZE, { owner });
  await writeUniformMessages(await d.maildirOf(d.passwordUser.user), COUNT, SIZE, { owner });
  const caPath = join(work, 'ca.pem');
  await writeFile(caPath, d.caCertPem);
  const tokenPath = join(work, 'token');
  await writeFile(tokenPath, await d.mintToken('oauth@example.test', { expiresIn: 7200 }), { mode: 0o600 });
  const pwPath = join(work, 'password');
  await writeFile(pwPath, d.passwordUser.password, { mode: 0o600 });
  const mda = join(work, 'maildir-mda.sh');
  await writeFile(
    mda,
    '#!/bin/sh\nf="$$.$(od -An -N4 -tx4 /dev/urandom | tr -d \' \')"\ndd of="$1/tmp/$f" conv=fsync status=none && mv "$1/tmp/$f" "$1/new/$f"\n',
    { mode: 0o755 },
  );
  let n = 0;
  const fresh = async (): Promise<string> => {
    const dir = join(work, `run-${++n}`);
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, 'Maildir', sub), { recursive: true });
    return dir;
  };
  const contenders: Record<string, () => Promise<Sample>> = {
    'popgate fetch (CLI, OAuth)': async () => {
      const dir = await fresh();
      const env = {
        ...process.env,
        XDG_STATE_HOME: join(dir, 'state'),
        XDG_CONFIG_HOME: join(dir, 'config'),
      };
      const args = [
        join(ROOT, 'bin/popgate.js'),
        'fetch',
        '--quiet',
        '--host',
        '127.0.0.1',
        '--port',
        String(d.popsPort),
      ];
      args.push(
        '--ca',
        caPath,
        '--user',
        'oauth@example.test',
        '--token-file',
        tokenPath,
        '--to',
        join(dir, 'Maildir'),
      );
      const s = await timed(process.execPath, args, env);
      if ((await count(join(dir, 'Maildir'))) !== COUNT)
        throw new Error('popgate CLI did not fetch everything');
      return s;
    },
    'popgate engine (OAuth)': async () =>
      engine('oauth@example.test', await d.mintToken('oauth@example.test'), 'XOAUTH2'),
    'popgate engine (password)': async () => engine(d.passwordUser.user, d.passwordUser.password, 'PLAIN'),
    'fetchmail + Maildir MDA': async () => {
      const dir = await fresh();
      const rc = join(dir, 'fetchmailrc');
      await writeFile(
        rc,
        `set no bouncemail\npoll 127.0.0.1 service ${d.popsPort} protocol pop3 auth password user "${d.passwordUser.user}" password "${d.passwordUser.password}" ssl sslcertck sslcertfile "${caPath}" sslcommonname localhost fetchall keep mda "${mda} ${join(dir, 'Maildir')}"\n`,
        { mode: 0o600 },
      );
      await chmod(rc, 0o600);
      const env = { ...process.env, HOME: dir };
      const s = await timed(
        '/usr/bin/fetchmail',
        ['-f', rc, '--pidfile', join(dir, 'pid'), '--idfile', join(dir, 'ids'), '--nodetach', '--silent'],
        env,
      );
      if ((await count(join(dir, 'Maildir'))) !== COUNT)
        throw new Error('fetchmail did not fetch everything');
      return s;
    },
  };
  async function engine(user: string, token: string, mechanism: 'XOAUTH2' | 'PLAIN'): Promise<Sample> {
    const dir = await fresh();
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    const report = await runAccount({
      account: 'bench',
      stateDir: join(dir, 'state'),
      host: '127.0.0.1',
      port: d.popsPort,
      tls: 'implicit',
      ca: d.caCertPem,
      user,
      token,
      mechanism,
      destination: { kind: 'maildir', path: join(dir, 'Maildir') },
    });
    const wall = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (report.fetched !== COUNT) throw new Error(`engine fetched ${report.fetched}`);
    return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
  }

  const names = Object.keys(contenders);
  const samples = new Map<string, Sample[]>(names.map((k) => [k, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const peer = !name.startsWith('popgate');
      if (peer && (round === 0 || round > PEER_ROUNDS)) continue;
      const s = await contenders[name]!();
      if (round > 0) samples.get(name)!.push(s);
      console.error(
        `round ${round}${round === 0 ? ' (warm-up)' : ''} ${name}: wall ${s.wall.toFixed(2)} s, cpu ${s.cpu.toFixed(2)} s`,
      );
    }
    for (const dir of await readdir(work))
      if (dir.startsWith('run-')) await rm(join(work, dir), { recursive: true, force: true });
  }
  const summary = names.map((name) => ({
    name,
    wall: median(samples.get(name)!.map((s) => s.wall)),
    cpu: median(samples.get(name)!.map((s) => s.cpu)),
  }));
  const cli = summary[0]!;
  const peersBest = Math.min(...summary.filter((s) => !s.name.startsWith('popgate')).map((s) => s.wall));
  console.log(
    `\n${COUNT} x ${SIZE} B into Maildir, ${ROUNDS} rounds, medians (load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)})\n`,
  );
  console.log('| fetcher | wall s | CPU s | popgate CLI speed-up |');
  console.log('|---|---:|---:|---:|');
  for (const s of summary)
    console.log(
      `| ${s.name} | ${s.wall.toFixed(2)} | ${s.cpu.toFixed(2)} | ${s === cli ? '—' : `${(s.wall / cli.wall).toFixed(2)}x`} |`,
    );
  console.log(`\npopgate CLI vs the faster peer: ${(peersBest / cli.wall).toFixed(2)}x (target 3x)`);
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(
    join(ROOT, 'bench/results/fetch.json'),
    `${JSON.stringify({ date: new Date().toISOString(), count: COUNT, size: SIZE, rounds: ROUNDS, summary, samples: Object.fromEntries(samples) }, null, 2)}\n`,
  );
  await writeFile(
    join(ROOT, 'bench/fetch.svg'),
    barChartSvg(
      `Fetch ${COUNT} messages into Maildir from Dovecot 2.3 (median seconds; shorter is faster)`,
      's',
      [
        { label: 'wall time', bars: summary.map((s) => ({ name: s.name, value: s.wall })) },
        { label: 'CPU time', bars: summary.map((s) => ({ name: s.name, value: s.cpu })) },
      ],
    ),
  );
} finally {
  await d.stop();
  await rm(work, { recursive: true, force: true });
}
