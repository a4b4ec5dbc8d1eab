// Server benchmark: the same raw pipelined reader fetches the same Maildir from popgate's POP3
// server and from a real Dovecot 2.3 (both over implicit TLS, both in their own processes), in
// one run; then logins per second through popgate with JWT validation (keys cached) and with
// cached introspection against oidc-provider; then memory per idle session with 1,000 open.
//
// Run: node --import tsx bench/server.ts [--quick] [--svg bench/server.svg]
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createTokenValidator } from '../src/auth/index.ts';
import { startAuthorizationServer } from '../src/devtools/authorization-server.ts';
import { createPop3Server } from '../src/server/server.ts';
import { MaildirStore } from '../src/store/maildir-store.ts';
import { startDovecot } from '../test/helpers/dovecot.ts';
import { writeUniformMessages } from '../test/helpers/mail-fixtures.ts';
import { deviceLogin, nativeAccount } from '../test/helpers/oidc.ts';
import { pipelinedFetch, rawLogin, TableValidator, xoauth2 } from '../test/unit/server-helpers.ts';

const USER = 'alice@example.test';
const args = process.argv.slice(2);
const quick = args.includes('--quick');

// --- child mode: a popgate server in its own process ---------------------------------------
interface ChildConfig {
  root: string;
  cert: string;
  key: string;
  validator: { kind: 'table'; token: string } | { kind: 'real'; options: Record<string, unknown> };
}

async function child(config: ChildConfig): Promise<void> {
  let validator: import('../src/auth/types.ts').TokenValidator;
  if (config.validator.kind === 'table') {
    const table = new TableValidator();
    table.tokens.set(config.validator.token, { user: USER });
    validator = table;
  } else {
    validator = createTokenValidator(config.validator.options);
  }
  const store = new MaildirStore(config.root);
  const server = createPop3Server({
    listen: ['pop3s://127.0.0.1:0'],
    tls: { cert: config.cert, key: config.key },
    validator,
    store,
    limits: { maxConnectionsPerIp: 10_000, maxConnections: 10_000, maxConnectionsPerUser: 10_000 },
  });
  const [address] = await server.listen();
  process.on('message', (msg: string) => {
    if (msg === 'mem') {
      global.gc?.();
      process.send!({
        rss: process.memoryUsage().rss,
        heap: process.memoryUsage().heapUsed,
        sessions: server.sessionCount,
      });
    }
  });
  process.send!({ port: address!.port });
}

if (args[0] === '--child') {
  await child(JSON.parse(args[1]!) as ChildConfig);
} else {
  await main();
}

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

function ask(proc: ChildProcess): Promise<{ rss: number; heap: number; sessions: number }> {
  return new Promise((resolve) => {
    proc.once('message', (m) => resolve(m as { rss: number; heap: number; sessions: number }));
    proc.send('mem');
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function fetchRun(
  port: number,
  authLine: string,
  ca: string,
  count: number,
): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now();
  const socket = await rawLogin(port, authLine, ca);
  const { bytes } = await pipelinedFetch(socket, count);
  const seconds = (performance.now() - started) / 1000;
  socket.end('QUIT\r\n');
  await new Promise((r) => socket.once('close', r));
  return { seconds, bytes };
}

async function logins(
  port: number,
  ca: string,
  authLine: string,
  total: number,
  concurrency: number,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const s = await rawLogin(port, authLine, ca);
        s.end('QUIT\r\n');
        await new Promise((r) => s.once('close', r));
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

function svgChart(title: string, rows: { label: string; value: number; unit: string }[]): string {
  const width = 640;
  const barHeight = 28;
  const max = Math.max(...rows.map((r) => r.value));
  const height = 50 + rows.length * (barHeight + 12);
  const bars = rows
    .map((r, i) => {
      const y = 40 + i * (barHeight + 12);
      const w = Math.max(2, (r.value / max) * (width - 260));
      return (
        `<text x="10" y="${y + 19}" font-size="13">${r.label}</text>` +
        `<rect x="170" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${i % 2 ? '#8a8a8a' : '#2f6db5'}"/>` +
        `<text x="${(175 + w).toFixed(1)}" y="${y + 19}" font-size="13">${r.value.toFixed(1)} ${r.unit}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><text x="10" y="22" font-size="15" font-weight="bold">${title}</text>${bars}</svg>\n`;
}

async function main(): Promise<void> {
  const SMALL = quick ? 500 : 2000;
  const ROUNDS = quick ? 3 : 5;
  const dovecot = await startDovecot({ users: [USER], processLimit: 1200 });
  const children: ChildProcess[] = [];
  try {
    const maildir = await dovecot.maildirOf(USER);
    const owner = { uid: dovecot.mailUid, gid: dovecot.mailGid };
    await writeUniformMessages(maildir, SMALL, 4096, { owner });
    const root = join(dovecot.dir, 'popgate-root');
    await mkdir(root);
    await symlink(maildir, join(root, USER));
    const ca = dovecot.caCertPem;
    const certs = join(dovecot.dir, 'certs');
    const { readFile } = await import('node:fs/promises');
    const cert = await readFile(join(certs, 'dovecot.crt'), 'utf8');
    const key = await readFile(join(certs, 'dovecot.key'), 'utf8');
    const pop = await startChild({ root, cert, key, validator: { kind: 'table', token: 'bench-token' } });
    children.push(pop.proc);

    // 1. Throughput: same client, same maildrop, alternating, medians.
    const dovecotToken = await dovecot.mintToken(USER, { expiresIn: 3600 });
    const dAuth = `AUTH XOAUTH2 ${xoauth2(USER, dovecotToken)}`;
    const pAuth = `AUTH XOAUTH2 ${xoauth2(USER, 'bench-token')}`;
    await fetchRun(dovecot.popsPort, dAuth, ca, SMALL); // warm-up (and Dovecot's uidlist)
    await fetchRun(pop.port, pAuth, ca, SMALL);
    const dTimes: number[] = [];
    const pTimes: number[] = [];
    let mb = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const d = await fetchRun(dovecot.popsPort, dAuth, ca, SMALL);
      const p = await fetchRun(pop.port, pAuth, ca, SMALL);
      dTimes.push(d.seconds);
      pTimes.push(p.seconds);
      mb = p.bytes / 1e6;
    }
    const dMs = SMALL / median(dTimes);
    const pMs = SMALL / median(pTimes);
    console.log(
      `throughput (${SMALL} x 4 KiB, pipelined, TLS): popgate ${pMs.toFixed(0)} msg/s ${(mb / median(pTimes)).toFixed(1)} MB/s; dovecot ${dMs.toFixed(0)} msg/s ${(mb / median(dTimes)).toFixed(1)} MB/s; ratio ${(pMs / dMs).toFixed(2)}`,
    );

    // 2. Logins per second through popgate with real validation.
    const as = await startAuthorizationServer({ accessTokenTtl: 3600 });
    try {
      // A second user with a small maildrop: the figure is about logging in, not about scanning
      // the 2,000-message Maildir of the throughput test.
      const LOGIN_USER = 'bob@example.test';
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
            issuers: [
              {
                issuer: as.issuer,
                audience: [as.pop3Audience, as.opaqueAudience],
                introspection: {
                  clientId: as.clients.introspector.clientId,
                  clientSecret: as.clients.introspector.clientSecret,
                },
              },
            ],
          },
        },
      });
      children.push(real.proc);
      const total = quick ? 200 : 600;
      // One user: the maildrop lock serialises logins, so the bench logs in and out one at a time
      // per connection, 1 connection deep (lock contention would measure the store, not auth).
      const jwtRate = await logins(real.port, ca, `AUTH XOAUTH2 ${xoauth2(LOGIN_USER, jwt)}`, total, 1);
      const introRate = await logins(real.port, ca, `AUTH XOAUTH2 ${xoauth2(LOGIN_USER, opaque)}`, total, 1);
      console.log(
        `logins/s (TLS handshake + AUTH + open maildrop + QUIT, sequential): JWT ${jwtRate.toFixed(0)}, cached introspection ${introRate.toFixed(0)}`,
      );

      // 3. Memory per idle session.
      const N = 1000;
      const before = await ask(pop.proc);
      const sockets: TLSSocket[] = [];
      for (let i = 0; i < N; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const s = tlsConnect({ host: '127.0.0.1', port: pop.port, ca, servername: 'localhost' });
            await new Promise<void>((resolve, reject) => {
              s.once('data', () => resolve());
              s.once('error', reject);
            });
            sockets.push(s);
          }),
        );
      }
      const during = await ask(pop.proc);
      const perSession = (during.rss - before.rss) / during.sessions / 1024;
      const heapPer = (during.heap - before.heap) / during.sessions / 1024;
      console.log(
        `idle sessions: ${during.sessions} open, RSS +${((during.rss - before.rss) / 1e6).toFixed(1)} MB, ${perSession.toFixed(1)} KiB RSS and ${heapPer.toFixed(1)} KiB heap per session`,
      );
      for (const s of sockets) s.destroy();

      const svgArg = args.indexOf('--svg');
      if (svgArg >= 0) {
        const svg = svgChart(
          `POP3 server: ${SMALL} x 4 KiB messages, pipelined over TLS (msg/s, higher is better)`,
          [
            { label: 'popgate', value: pMs, unit: 'msg/s' },
            { label: 'Dovecot 2.3', value: dMs, unit: 'msg/s' },
          ],
        );
        await writeFile(args[svgArg + 1]!, svg);
      }
    } finally {
      await as.stop();
    }
  } finally {
    for (const c of children) c.kill();
    await dovecot.stop();
  }
}
