// Fetcher benchmark (issue 4): 2,000 messages of 4 KiB from the same Dovecot 2.3 (the test
// harness's, implicit TLS on 127.0.0.1) into a fresh Maildir per run, by
//   - popgate fetch, the CLI from compiled dist/ (POPGATE_RUN_DIST=1) as a child process, OAuth
//     (XOAUTH2 with a minted JWT from --token-file). The CLI has no password login, so
//   - popgate's fetch engine (runAccount from dist/) in its own Node process with the password
//     user (SASL PLAIN): the same work as the CLI, same login as the peers,
//   - the same engine in-process, OAuth and password (no process start-up),
//   - fetchmail 6.4 (password user, ssl + sslcertck, fetchall keep) delivering with procmail
//     (one process per message, `DEFAULT=Maildir/`), the standard fetchmail + Maildir set-up,
//   - getmail6 (password user, SimplePOP3SSLRetriever with ca_certs, its own Maildir
//     destination, read_all = false, delete = false), run as user nobody (it refuses to deliver
//     as root) with its rc dir and Maildir owned by nobody.
// Every run must deliver exactly COUNT files (else the bench fails). popgate variants: a warm-up
// plus --rounds interleaved rounds; fetchmail and getmail6: --peer-rounds of those rounds.
// Medians of wall and CPU time (user+sys of the child and its reaped children from /usr/bin/time;
// process.cpuUsage for in-process runs). Load averages are recorded per run.
//
//   UV_THREADPOOL_SIZE=16 node --import tsx bench/fetch.ts [--rounds 3] [--peer-rounds 3] [--count 2000] [--size 4096]
import { execFile, execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAccount } from '../src/fetch/run-account.ts';
import { startDovecot } from '../test/helpers/dovecot.ts';
import { GETMAIL_WAITPID_WRAPPER } from '../test/helpers/getmail.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { median } from './lib/stats.ts';
import { barChartSvg } from './lib/svg.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const ROUNDS = Number(flag('--rounds', '3'));
const PEER_ROUNDS = Number(flag('--peer-rounds', '3'));
const COUNT = Number(flag('--count', '2000'));
const SIZE = Number(flag('--size', '4096'));
const ROOT = new URL('..', import.meta.url).pathname;
const NOBODY = 65534;

interface Sample {
  wall: number;
  cpu: number;
  load: number;
}

/** Runs a command under /usr/bin/time; resolves wall and user+sys seconds of the child tree. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    execFile(
      '/usr/bin/time',
      ['-f', 'TIME %U %S', cmd, ...args],
      { env, maxBuffer: 1 << 26, timeout: 600_000 },
      (error, _stdout, stderr) => {
        const wall = Number(process.hrtime.bigint() - start) / 1e9;
        const m = /TIME ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
        if (error || !m) {
          reject(new Error(`${cmd} failed: ${error?.message ?? ''}\n${stderr.slice(-2000)}`));
          return;
        }
        resolve({ wall, cpu: Number(m[1]) + Number(m[2]), load: loadavg()[0]! });
      },
    );
  });
}

/** Fails the run unless exactly COUNT non-empty message files were delivered. */
async function expectDelivered(name: string, maildir: string): Promise<void> {
  const files = [
    ...(await readdir(join(maildir, 'new'))).map((f) => join(maildir, 'new', f)),
    ...(await readdir(join(maildir, 'cur'))).map((f) => join(maildir, 'cur', f)),
  ];
  const leftInTmp = (await readdir(join(maildir, 'tmp'))).length;
  if (files.length !== COUNT || leftInTmp !== 0)
    throw new Error(`${name}: delivered ${files.length} files (${leftInTmp} in tmp/), expected ${COUNT}`);
}

// Compiled code for the CLI and the engine child: the bench measures what users install.
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });

const d = await startDovecot({ users: ['oauth@example.test'] });
const work = await mkdtemp(join(tmpdir(), 'popgate-bench-fetch-'));
try {
  // nobody (getmail6) must traverse the work dir and read the CA; nothing secret lives here
  // except the password/token files (0600, root) and the per-run rc files (0600, their owner).
  await chmod(work, 0o711);
  const owner = { uid: d.mailUid, gid: d.mailGid };
  await writeUniformMessages(await d.maildirOf('oauth@example.test'), COUNT, SIZE, { owner });
  await writeUniformMessages(await d.maildirOf(d.passwordUser.user), COUNT, SIZE, { owner });
  const caPath = join(work, 'ca.pem');
  await writeFile(caPath, d.caCertPem, { mode: 0o644 });
  const tokenPath = join(work, 'token');
  await writeFile(tokenPath, await d.mintToken('oauth@example.test', { expiresIn: 7200 }), { mode: 0o600 });
  const pwPath = join(work, 'password');
  await writeFile(pwPath, d.passwordUser.password, { mode: 0o600 });
  // getmail6 6.18 waits for its per-message delivery child with a SIGCHLD handler and a
  // threading.Condition: the handler is installed after fork() and may notify before the wait
  // starts, so a fast child is missed and the run dies with "waiting child pid N timed out"
  // (seen here in 1 of 3 unmodified 50-message runs, and with the handler moved before fork()).
  // This wrapper runs the unmodified /usr/bin/getmail with one change: the parent waits with a
  // blocking waitpid(). Same fork, same delivery (its own Maildir code, fsync), same order.
  const getmailWrapper = join(work, 'getmail-forkfix.py');
  await writeFile(getmailWrapper, GETMAIL_WAITPID_WRAPPER, { mode: 0o644 });
  const distEnv = { ...process.env, POPGATE_RUN_DIST: '1', UV_THREADPOOL_SIZE: '16' };
  let n = 0;
  const fresh = async (uid = 0): Promise<string> => {
    const dir = join(work, `run-${++n}`);
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, 'Maildir', sub), { recursive: true });
    if (uid !== 0) {
      await chmod(dir, 0o700);
      for (const p of ['', 'Maildir', 'Maildir/tmp', 'Maildir/new', 'Maildir/cur'])
        await chown(join(dir, p), uid, uid);
    }
    return dir;
  };
  // The engine in its own process from dist/, logging in with the password (SASL PLAIN).
  const engineChild = `
    import { readFileSync } from 'node:fs';
    import { runAccount } from ${JSON.stringify(join(ROOT, 'dist/fetch/run-account.js'))};
    const [stateDir, maildir, port, ca, user, pwFile] = process.argv.slice(1);
    const r = await runAccount({ account: 'bench', stateDir, host: '127.0.0.1', port: Number(port),
      tls: 'implicit', ca: readFileSync(ca, 'utf8'), user, token: readFileSync(pwFile, 'utf8'),
      mechanism: 'PLAIN', destination: { kind: 'maildir', path: maildir } });
    if (r.fetched !== ${COUNT}) { console.error('fetched', r.fetched); process.exit(1); }`;

  const contenders: Record<string, () => Promise<Sample>> = {
    'popgate CLI, dist (OAuth)': async () => {
      const dir = await fresh();
      const env = { ...distEnv, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') };
      const s = await timed(
        process.execPath,
        [
          join(ROOT, 'bin/popgate.js'),
          'fetch',
          '--quiet',
          '--host',
          '127.0.0.1',
          '--port',
          String(d.popsPort),
          '--ca',
          caPath,
          '--user',
          'oauth@example.test',
          '--token-file',
          tokenPath,
          '--to',
          join(dir, 'Maildir'),
        ],
        env,
      );
      await expectDelivered('popgate CLI', join(dir, 'Maildir'));
      return s;
    },
    'popgate engine process, dist (password)': async () => {
      const dir = await fresh();
      const s = await timed(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          engineChild,
          join(dir, 'state'),
          join(dir, 'Maildir'),
          String(d.popsPort),
          caPath,
          d.passwordUser.user,
          pwPath,
        ],
        distEnv,
      );
      await expectDelivered('popgate engine process', join(dir, 'Maildir'));
      return s;
    },
    'popgate in-process (OAuth)': async () =>
      engine('oauth@example.test', await d.mintToken('oauth@example.test'), 'XOAUTH2'),
    'popgate in-process (password)': async () =>
      engine(d.passwordUser.user, d.passwordUser.password, 'PLAIN'),
    'fetchmail + procmail': async () => {
      const dir = await fresh();
      const procmailrc = join(dir, 'procmailrc');
      await writeFile(procmailrc, `DEFAULT=${join(dir, 'Maildir')}/\nLOGFILE=/dev/null\n`, { mode: 0o600 });
      const rc = join(dir, 'fetchmailrc');
      await writeFile(
        rc,
        `set no bouncemail\npoll 127.0.0.1 service ${d.popsPort} protocol pop3 auth password user "${d.passwordUser.user}" password "${d.passwordUser.password}" ssl sslcertck sslcertfile "${caPath}" sslcommonname localhost fetchall keep mda "/usr/bin/procmail -m ${procmailrc}"\n`,
        { mode: 0o600 },
      );
      const s = await timed(
        '/usr/bin/fetchmail',
        ['-f', rc, '--pidfile', join(dir, 'pid'), '--idfile', join(dir, 'ids'), '--nodetach', '--silent'],
        { ...process.env, HOME: dir },
      );
      await expectDelivered('fetchmail', join(dir, 'Maildir'));
      return s;
    },
    'getmail6 (as nobody, waitpid fix)': async () => {
      const dir = await fresh(NOBODY);
      const rc = join(dir, 'getmailrc');
      await writeFile(
        rc,
        [
          '[retriever]',
          'type = SimplePOP3SSLRetriever',
          'server = 127.0.0.1',
          `port = ${d.popsPort}`,
          `username = ${d.passwordUser.user}`,
          `password = ${d.passwordUser.password}`,
          `ca_certs = ${caPath}`,
          'ssl_cert_hostname = localhost',
          '[destination]',
          'type = Maildir',
          `path = ${join(dir, 'Maildir')}/`,
          '[options]',
          'read_all = false',
          'delete = false',
          'verbose = 0',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      await chown(rc, NOBODY, NOBODY);
      const s = await timed(
        '/usr/bin/setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          '/usr/bin/python3',
          getmailWrapper,
          '--rcfile',
          rc,
          '--getmaildir',
          dir,
        ],
        { ...process.env, HOME: dir },
      );
      await expectDelivered('getmail6', join(dir, 'Maildir'));
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
    await expectDelivered('popgate in-process', join(dir, 'Maildir'));
    return { wall, cpu: (cpu.user + cpu.system) / 1e6, load: loadavg()[0]! };
  }

  const only = flag('--only', '');
  const names = Object.keys(contenders).filter((k) => only === '' || k.includes(only));
  const isPeer = (name: string) => !name.startsWith('popgate');
  const samples = new Map<string, Sample[]>(names.map((k) => [k, []]));
  const loads: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      if (isPeer(name) && (round === 0 || round > PEER_ROUNDS)) continue;
      const s = await contenders[name]!();
      if (round > 0) samples.get(name)!.push(s);
      loads.push(s.load);
      console.error(
        `round ${round}${round === 0 ? ' (warm-up)' : ''} ${name}: wall ${s.wall.toFixed(2)} s, cpu ${s.cpu.toFixed(2)} s, load ${s.load.toFixed(1)}`,
      );
      for (const dir of await readdir(work))
        if (dir.startsWith('run-')) await rm(join(work, dir), { recursive: true, force: true });
    }
  }
  const summary = names.map((name) => ({
    name,
    runs: samples.get(name)!.length,
    wall: median(samples.get(name)!.map((s) => s.wall)),
    cpu: median(samples.get(name)!.map((s) => s.cpu)),
  }));
  const peers = summary.filter((s) => isPeer(s.name));
  const bestPeer = peers.length > 0 ? peers.reduce((a, b) => (b.wall < a.wall ? b : a)) : undefined;
  const loadRange = `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
  console.log(
    `\n${COUNT} x ${SIZE} B into Maildir; popgate ${ROUNDS} rounds, peers ${PEER_ROUNDS}; medians; ${cpus().length} cores, 1-min load average ${loadRange}\n`,
  );
  console.log(`| fetcher | runs | wall s | CPU s | ${bestPeer ? `${bestPeer.name} wall / this wall` : ''} |`);
  console.log('|---|---:|---:|---:|---:|');
  for (const s of summary)
    console.log(
      `| ${s.name} | ${s.runs} | ${s.wall.toFixed(2)} | ${s.cpu.toFixed(2)} | ${bestPeer ? `${(bestPeer.wall / s.wall).toFixed(2)}x` : ''} |`,
    );
  if (only === '') {
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(
      join(ROOT, 'bench/results/fetch.json'),
      `${JSON.stringify({ date: new Date().toISOString(), count: COUNT, size: SIZE, rounds: ROUNDS, peerRounds: PEER_ROUNDS, loadRange, summary, samples: Object.fromEntries(samples) }, null, 2)}\n`,
    );
    await writeFile(
      join(ROOT, 'bench/fetch.svg'),
      barChartSvg(
        `Fetch ${COUNT} x ${SIZE} B into Maildir from Dovecot 2.3 (median seconds; shorter is faster)`,
        's',
        [
          { label: 'wall time', bars: summary.map((s) => ({ name: s.name, value: s.wall })) },
          { label: 'CPU time', bars: summary.map((s) => ({ name: s.name, value: s.cpu })) },
        ],
      ),
    );
  }
} finally {
  await d.stop();
  await rm(work, { recursive: true, force: true });
}
