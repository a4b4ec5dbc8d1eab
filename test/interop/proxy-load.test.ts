// 200 concurrent legacy sessions through one real `popgate proxy` child in front of the test
// Dovecot (OAuth2 upstream: XOAUTH2 with a JWT Dovecot validates locally, over verified TLS).
//
// Accounts: 10 accounts x 20 sessions each, with the proxy's per-account ceiling raised from 4 to
// 20. The ceiling exists for Microsoft, which allows few POP sessions per mailbox; an office
// behind one proxy is several mailboxes, each with a few devices, so several accounts is the
// realistic shape and also exercises ten token providers and ten app-password entries at once.
// 20 per account (not the default 4) keeps the test to ten `popgate proxy passwords add` runs.
// Dovecot's own `mail_max_userip_connections` (10 by default) is 100 in the harness, above 20;
// its process limit is raised to 256, since each pop3s session holds a login process (the TLS
// proxy) and a pop3 process. All 200 clients come from 127.0.0.1, so the proxy's per-address
// ceiling (50) is raised to 250.
//
// The overlap is forced: every client connects and logs in (which makes the proxy log in
// upstream) before any RETR is sent, and the proxy's upstream-sessions gauge must read 200 at
// that barrier. Then every client RETRs its whole maildrop, compares each message's bytes with the
// file on disk, and QUITs. The proxy's peak RSS (VmHWM of the child) must stay under RSS_BOUND.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { type FixtureMessage, writeMixedMessages } from '../helpers/mail-fixtures.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';
import {
  addAppPassword,
  type ProxyHome,
  proxyHome,
  type RunningProxy,
  startProxy,
} from '../helpers/proxy.ts';
import { appendTestLog } from '../helpers/test-log.ts';
import { WireClient } from '../unit/server-helpers.ts';

const ACCOUNTS = 10;
const PER_ACCOUNT = 20;
const SESSIONS = ACCOUNTS * PER_ACCOUNT;
/** One full cycle of the mixed kinds: dots, 8-bit, long lines, attachments, headers only... */
const MESSAGES = 11;
/**
 * The proxy's peak resident set must stay under this (bytes): about 100 MiB at start, plus per
 * session the client's body buffer (256 KiB), the answer writer's high-water mark (128 KiB) and
 * socket/TLS buffers, about 0.5 MiB x 200, plus scrypt's 8 MiB per app-password check on each of
 * the 16 libuv pool threads while the logins overlap. Nothing scales with a message's size.
 */
const RSS_BOUND = 320 * 1024 * 1024;
/** Per-line wait under load (200 sessions on 2 shared cores). */
const LINE_TIMEOUT_MS = 120_000;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function vmHwm(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error('no VmHWM in /proc/PID/status');
  return Number(kb) * 1024;
}

async function gauge(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

describe('200 concurrent legacy sessions through one popgate proxy', () => {
  let d: DovecotInstance;
  let home: ProxyHome;
  let proxy: RunningProxy;
  const fixtures: FixtureMessage[][] = [];
  const passwords: string[] = [];

  before(async () => {
    if (!peerPath('dovecot')) return;
    const users = Array.from({ length: ACCOUNTS }, (_, i) => `load${i}@example.test`);
    d = await startDovecot({ users, processLimit: 256 });
    home = await proxyHome('');
    await writeFile(join(home.dir, 'dovecot-ca.pem'), d.caCertPem);
    const config = [
      '[proxy]',
      'listen = ["pop3://127.0.0.1:0"]',
      'self_signed = false',
      'metrics = "127.0.0.1:0"',
      `max_connections_per_account = ${PER_ACCOUNT}`,
      `max_connections_per_ip = ${SESSIONS + 50}`,
      '',
    ];
    for (const [i, user] of users.entries()) {
      fixtures.push(
        await writeMixedMessages(await d.maildirOf(user), {
          count: MESSAGES,
          seed: i + 1,
          owner: { uid: d.mailUid, gid: d.mailGid },
        }),
      );
      const tokenFile = join(home.dir, `token-${i}`);
      await writeFile(tokenFile, await d.mintToken(user, { expiresIn: 3600 }), { mode: 0o600 });
      config.push(
        `[accounts.load${i}]`,
        `user = "${user}"`,
        `local_user = "load${i}"`,
        'host = "127.0.0.1"',
        `port = ${d.popsPort}`,
        'tls = "implicit"',
        `ca = "${join(home.dir, 'dovecot-ca.pem')}"`,
        'mechanism = "XOAUTH2"',
        `token_file = "${tokenFile}"`,
        '',
      );
    }
    await writeFile(home.configFile, config.join('\n'));
    for (let i = 0; i < ACCOUNTS; i++)
      passwords.push((await addAppPassword(home, `load${i}`, 'load')).password);
    proxy = await startProxy(home);
  });

  after(async () => {
    await proxy?.stop();
    // The token_file fixtures hold minted tokens by design; everything else popgate wrote is scanned.
    await home?.cleanup({ except: Array.from({ length: ACCOUNTS }, (_, i) => `token-${i}`) });
    await d?.stop();
  });

  it('all 200 log in at once, then all retrieve every message byte-identical; RSS stays bounded', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const hwmStart = await vmHwm(proxy.proc.pid!);
    const expected = fixtures.map((set) => set.map((f) => f.retrievedSha256));

    // Phase 1: 200 connections, each logged in (upstream session open) before any RETR.
    const clients = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, k) => {
        const account = k % ACCOUNTS;
        const c = await WireClient.connect(proxy.pop3);
        assert.match(await c.line(LINE_TIMEOUT_MS), /^\+OK/);
        c.write(`USER load${account}\r\nPASS ${passwords[account]}\r\n`);
        assert.match(await c.line(LINE_TIMEOUT_MS), /^\+OK/);
        const pass = await c.line(LINE_TIMEOUT_MS);
        assert.match(pass, /^\+OK/, `session ${k}: ${pass}`);
        return { c, account };
      }),
    );
    assert.equal(await gauge(proxy.metrics, 'popgate_proxy_upstream_sessions'), SESSIONS);
    const hwmLogin = await vmHwm(proxy.proc.pid!);

    // Phase 2: every session RETRs its whole maildrop (pipelined) and QUITs.
    const results = await Promise.all(
      clients.map(async ({ c, account }) => {
        c.write(`STAT\r\n${Array.from({ length: MESSAGES }, (_, n) => `RETR ${n + 1}\r\n`).join('')}`);
        const stat = await c.line(LINE_TIMEOUT_MS);
        assert.match(stat, new RegExp(`^\\+OK ${MESSAGES} `));
        const got: string[] = [];
        for (let n = 0; n < MESSAGES; n++) {
          assert.match(await c.line(LINE_TIMEOUT_MS), /^\+OK/);
          const lines = await c.body(LINE_TIMEOUT_MS);
          got.push(sha(Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1')));
        }
        c.write('QUIT\r\n');
        assert.match(await c.line(LINE_TIMEOUT_MS), /^\+OK/);
        await c.waitClosed(LINE_TIMEOUT_MS);
        assert.deepEqual(got, expected[account]);
        return got.length;
      }),
    );
    assert.equal(
      results.reduce((a, b) => a + b, 0),
      SESSIONS * MESSAGES,
    );

    const hwm = await vmHwm(proxy.proc.pid!);
    const octets = fixtures.reduce((sum, set) => sum + set.reduce((s, f) => s + f.retrievedSize, 0), 0);
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const figure = `proxy VmHWM ${mib(hwm)} after ${SESSIONS} concurrent sessions (${mib(hwmStart)} at start, ${mib(hwmLogin)} with all logged in), ${mib(octets * PER_ACCOUNT)} relayed`;
    appendTestLog('proxy-load', figure);
    t.diagnostic(figure);
    assert.ok(hwm < RSS_BOUND, figure);
    await proxy.waitForAudit(
      () => proxy.audit().filter((e) => e.event === 'proxy.logout' && e.how === 'quit').length === SESSIONS,
      LINE_TIMEOUT_MS,
    );
  });
});
