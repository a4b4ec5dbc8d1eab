// Real password-only clients through a real `popgate proxy` child to a real Dovecot that accepts
// only OAuth2 for the account (XOAUTH2 with a JWT it validates locally): Python's poplib (USER/PASS
// and AUTH PLAIN inline and two-step), curl -u, fetchmail 6.4 (STLS and ssl), getmail6 and mutt;
// every message byte-identical to the maildrop. Then the app-password rules: two devices at
// once, a revoked password refused at once, a wrong one refused and throttled and audited.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { GETMAIL_WAITPID_WRAPPER, NOBODY } from '../helpers/getmail.ts';
import { type FixtureMessage, writeMixedMessages } from '../helpers/mail-fixtures.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';
import {
  addAppPassword,
  type ProxyHome,
  popgate,
  proxyHome,
  type RunningProxy,
  run,
  startProxy,
} from '../helpers/proxy.ts';
import { WireClient } from '../unit/server-helpers.ts';

const USER = 'alice@example.test';
/** fetchmail 6.4 loses sync on lines of several KiB (it does so against Dovecot directly too). */
const FETCHMAIL_USER = 'fm@example.test';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** poplib: log in (USER/PASS, or AUTH PLAIN inline / two-step), RETR every message, print sha256s. */
const POPLIB = `
import base64, hashlib, json, poplib, ssl, sys
poplib._MAXLINE = 1 << 20  # the fixtures have lines of up to 100,000 characters
mode, port, user, password, how, ca = sys.argv[1:7]
if mode == 'pop3s':
    p = poplib.POP3_SSL('127.0.0.1', int(port), context=ssl.create_default_context(cafile=ca))
else:
    p = poplib.POP3('127.0.0.1', int(port))
caps = p.capa()
if how == 'user':
    p.user(user); p.pass_(password)
else:
    blob = base64.b64encode(b'\\0' + user.encode() + b'\\0' + password.encode()).decode()
    if how == 'plain-inline':
        p._shortcmd('AUTH PLAIN ' + blob)
    else:
        p._putcmd('AUTH PLAIN')
        line = p._getline()[0]
        assert line.startswith(b'+'), line
        p._putcmd(blob)
        resp = p._getresp()
count, size = p.stat()
uidl = [l.split()[1].decode() for l in p.uidl()[1]]
out = []
for n in range(1, count + 1):
    lines = p.retr(n)[1]
    out.append(hashlib.sha256(b'\\r\\n'.join(lines) + b'\\r\\n').hexdigest())
p.quit()
print(json.dumps({'caps': sorted(k for k in caps), 'count': count, 'uidl': uidl, 'sha': out}))
`;

describe('password-only clients through popgate proxy to Dovecot with OAuth2', () => {
  let d: DovecotInstance;
  let certs: TestCerts;
  let home: ProxyHome;
  let proxy: RunningProxy;
  let fixtures: FixtureMessage[];
  /** What a client delivers: the message on disk (LF) and on the wire (CRLF). */
  let onDisk: Buffer[];
  let fmOnDisk: Buffer[];
  let fmKinds: string[];
  let fm: { password: string; id: string };
  let phone: { password: string; id: string };
  let laptop: { password: string; id: string };

  before(async () => {
    if (!peerPath('dovecot')) return;
    d = await startDovecot({ users: [USER, FETCHMAIL_USER] });
    certs = await createTestCerts();
    const maildir = await d.maildirOf(USER);
    fixtures = await writeMixedMessages(maildir, { count: 24, owner: { uid: d.mailUid, gid: d.mailGid } });
    onDisk = await Promise.all(fixtures.map((f) => readFile(f.path)));
    const fmFixtures = await writeMixedMessages(await d.maildirOf(FETCHMAIL_USER), {
      count: 24,
      owner: { uid: d.mailUid, gid: d.mailGid },
    });
    // The same messages in Dovecot's password user: fetchmail and getmail read them directly
    // too, as the control for what those clients themselves rewrite.
    const control = await writeMixedMessages(await d.maildirOf(d.passwordUser.user), {
      count: 24,
      owner: { uid: d.mailUid, gid: d.mailGid },
    });
    for (const f of [...fmFixtures, ...control].filter((f) => f.kind === 'long-lines')) await rm(f.path);
    fmKinds = fmFixtures.filter((f) => f.kind !== 'long-lines').map((f) => f.kind);
    fmOnDisk = await Promise.all(
      fmFixtures.filter((f) => f.kind !== 'long-lines').map((f) => readFile(f.path)),
    );
    home = await proxyHome('');
    await writeFile(join(home.dir, 'dovecot-ca.pem'), d.caCertPem);
    await writeFile(join(home.dir, 'token'), await d.mintToken(USER, { expiresIn: 3600 }), { mode: 0o600 });
    await writeFile(join(home.dir, 'fm-token'), await d.mintToken(FETCHMAIL_USER, { expiresIn: 3600 }), {
      mode: 0o600,
    });
    await writeFile(
      home.configFile,
      [
        '[proxy]',
        'listen = ["pop3://127.0.0.1:0", "pop3s://127.0.0.1:0"]',
        `tls_cert = "${certs.server.certPath}"`,
        `tls_key = "${certs.server.keyPath}"`,
        'metrics = "127.0.0.1:0"',
        'failed_login_delay_ms = 100',
        '',
        '[accounts.alice]',
        `user = "${USER}"`,
        'local_user = "alice"',
        'host = "127.0.0.1"',
        `port = ${d.popsPort}`,
        'tls = "implicit"',
        `ca = "${join(home.dir, 'dovecot-ca.pem')}"`,
        'mechanism = "XOAUTH2"',
        `token_file = "${join(home.dir, 'token')}"`,
        '',
        '[accounts.fm]',
        `user = "${FETCHMAIL_USER}"`,
        'host = "127.0.0.1"',
        `port = ${d.popsPort}`,
        `ca = "${join(home.dir, 'dovecot-ca.pem')}"`,
        `token_file = "${join(home.dir, 'fm-token')}"`,
        '',
      ].join('\n'),
    );
    phone = await addAppPassword(home, 'alice', 'phone');
    laptop = await addAppPassword(home, 'alice', 'laptop');
    fm = await addAppPassword(home, 'fm', 'fetchmail');
    proxy = await startProxy(home, [], 2);
  });

  after(async () => {
    await proxy?.stop();
    // The token files and the peers' configs (each holding its app password) are this test's
    // fixtures, in plain text by design.
    await home?.cleanup({
      except: ['token', 'fm-token', '**/fetchmailrc', '**/getmailrc', '**/muttrc'],
    });
    await certs?.cleanup();
    await d?.stop();
  });

  const expectedSha = () => fixtures.map((f) => f.retrievedSha256);

  async function poplib(mode: 'pop3' | 'pop3s', how: string, password = phone.password, user = 'alice') {
    const port = mode === 'pop3s' ? proxy.pop3s : proxy.pop3;
    return run('/usr/bin/python3', ['-c', POPLIB, mode, String(port), user, password, how, certs.caCertPath]);
  }

  it('poplib USER/PASS on the loopback pop3 listener: every message byte-identical', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'python3')) return;
    const r = await poplib('pop3', 'user');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { caps: string[]; count: number; sha: string[] };
    assert.equal(result.count, fixtures.length);
    assert.deepEqual(result.sha, expectedSha());
    // CAPA is the proxy's own: USER and SASL PLAIN (loopback), STLS (local TLS), PIPELINING.
    for (const cap of ['USER', 'SASL', 'STLS', 'PIPELINING', 'RESP-CODES'])
      assert.ok(result.caps.includes(cap), cap);
  });

  for (const how of ['plain-inline', 'plain-two-step'] as const) {
    it(`poplib AUTH PLAIN (${how.slice(6)}) over pop3s: every message byte-identical`, async (t) => {
      if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'python3')) return;
      const r = await poplib('pop3s', how, laptop.password);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as { sha: string[] }).sha, expectedSha());
    });
  }

  it('curl -u user:password retrieves messages byte for byte, plaintext loopback and STLS', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
    for (const [n, tls] of [
      [1, false],
      [2, true],
      [5, false],
      [12, true],
      [fixtures.length, false],
    ] as const) {
      const file = join(home.dir, `curl-${n}.eml`);
      const r = await run('curl', [
        '-sS',
        '--max-time',
        '30',
        ...(tls ? ['--ssl-reqd', '--cacert', certs.caCertPath] : []),
        '-u',
        `alice:${tls ? laptop.password : phone.password}`,
        '-o',
        file,
        `pop3://localhost:${proxy.pop3}/${n}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha(await readFile(file)), fixtures[n - 1]!.retrievedSha256, `message ${n}`);
    }
  });

  /** fetchmail into files, one per message; returns their sha256s, sorted. */
  async function fetchmail(
    name: string,
    port: number,
    user: string,
    password: string,
    tls: string,
  ): Promise<string[]> {
    const dir = join(home.dir, `fetchmail-${name}`);
    const out = join(dir, 'out');
    await mkdir(out, { recursive: true });
    const rc = join(dir, 'fetchmailrc');
    await writeFile(
      rc,
      `set no bouncemail\nset invisible\npoll localhost service ${port} protocol pop3 auth password user "${user}" password "${password}" ${tls} fetchall keep mda "/bin/sh -c 'cat > ${out}/%T-$$'"\n`,
      { mode: 0o600 },
    );
    const r = await run(
      '/usr/bin/fetchmail',
      ['-f', rc, '--pidfile', join(dir, 'pid'), '--idfile', join(dir, 'ids'), '--nodetach', '-v'],
      { env: { ...process.env, HOME: dir } },
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    if (tls.includes('sslproto')) assert.match(`${r.stdout}${r.stderr}`, /POP3> STLS/);
    const files = await readdir(out);
    return (await Promise.all(files.map(async (f) => sha(await readFile(join(out, f)))))).sort();
  }

  /** What fetchmail and getmail deliver unchanged, by fixture kind: the rest they rewrite themselves. */
  function changedKinds(got: readonly string[]): string[] {
    const set = new Set(got);
    return fmOnDisk.map((b, i) => (set.has(sha(b)) ? undefined : fmKinds[i]!)).filter((k) => k !== undefined);
  }

  // fetchmail checks the certificate against the host name only: poll localhost.
  for (const mode of ['stls', 'ssl'] as const) {
    it(`fetchmail 6.4 with a password (${mode}) delivers exactly what it delivers from Dovecot directly`, async (t) => {
      if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'fetchmail')) return;
      const check = (ca: string) => `sslcertck sslcertfile "${ca}"`;
      const viaProxy = await fetchmail(
        mode,
        mode === 'ssl' ? proxy.pop3s : proxy.pop3,
        FETCHMAIL_USER,
        fm.password,
        `${mode === 'ssl' ? 'ssl' : 'sslproto tls1.2+'} ${check(certs.caCertPath)}`,
      );
      const direct = await fetchmail(
        `${mode}-direct`,
        mode === 'ssl' ? d.popsPort : d.popPort,
        d.passwordUser.user,
        d.passwordUser.password,
        `${mode === 'ssl' ? 'ssl' : 'sslproto tls1.2+'} ${check(join(home.dir, 'dovecot-ca.pem'))}`,
      );
      assert.equal(viaProxy.length, fmOnDisk.length);
      assert.deepEqual(viaProxy, direct);
      // fetchmail ends a message that is headers only with an empty line; everything else is the maildrop.
      assert.deepEqual([...new Set(changedKinds(viaProxy))], ['headers-only']);
    });
  }

  it('two devices with two app passwords at once, each sees the whole maildrop', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'python3')) return;
    // The phone holds a session open in TRANSACTION while the laptop logs in and reads everything.
    const c = await WireClient.connect(proxy.pop3s, { tls: { ca: certs.caCertPem } });
    await c.line();
    await c.command('USER alice');
    assert.match(await c.command(`PASS ${phone.password}`), /^\+OK /);
    assert.match(await c.command('STAT'), new RegExp(`^\\+OK ${fixtures.length} `));
    const laptopRun = await poplib('pop3', 'user', laptop.password);
    assert.equal(laptopRun.code, 0, laptopRun.stderr);
    assert.deepEqual((JSON.parse(laptopRun.stdout) as { sha: string[] }).sha, expectedSha());
    const [status, lines] = await c.multi('RETR 1');
    assert.match(status, /^\+OK/);
    assert.equal(sha(`${lines.join('\r\n')}\r\n`), fixtures[0]!.retrievedSha256);
    assert.match(await c.command('QUIT'), /^\+OK/);
    const ok = proxy.audit().filter((e) => e.event === 'proxy.login.ok');
    assert.ok(ok.some((e) => e.passwordLabel === 'phone') && ok.some((e) => e.passwordLabel === 'laptop'));
  });

  /** getmail6 (as nobody) into its own Maildir; returns the sha256s of what it delivered, sorted. */
  async function getmail(
    name: string,
    port: number,
    user: string,
    password: string,
    ca: string,
  ): Promise<string[]> {
    const dir = join(home.dir, `getmail-${name}`);
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, 'Maildir', sub), { recursive: true });
    // getmail refuses to deliver as root: it runs as nobody, who must reach its files.
    await chmod(home.dir, 0o711);
    for (const p of ['', 'Maildir', 'Maildir/tmp', 'Maildir/new', 'Maildir/cur']) {
      await chown(join(dir, p), NOBODY, NOBODY);
    }
    await writeFile(join(dir, 'ca.pem'), await readFile(ca), { mode: 0o644 });
    await writeFile(join(dir, 'wrapper.py'), GETMAIL_WAITPID_WRAPPER, { mode: 0o644 });
    const rc = join(dir, 'getmailrc');
    await writeFile(
      rc,
      [
        '[retriever]',
        'type = SimplePOP3SSLRetriever',
        'server = 127.0.0.1',
        `port = ${port}`,
        `username = ${user}`,
        `password = ${password}`,
        `ca_certs = ${join(dir, 'ca.pem')}`,
        'ssl_cert_hostname = localhost',
        '[destination]',
        'type = Maildir',
        `path = ${join(dir, 'Maildir')}/`,
        '[options]',
        'read_all = true',
        'delete = false',
        'delivered_to = false',
        'received = false',
        'verbose = 0',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await chown(rc, NOBODY, NOBODY);
    const r = await run(
      '/usr/bin/setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '/usr/bin/python3',
        join(dir, 'wrapper.py'),
        '--rcfile',
        rc,
        '--getmaildir',
        dir,
      ],
      { env: { ...process.env, HOME: dir } },
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const files = await readdir(join(dir, 'Maildir', 'new'));
    return (
      await Promise.all(files.map(async (f) => sha(await readFile(join(dir, 'Maildir', 'new', f)))))
    ).sort();
  }

  it('getmail6 with a password (pop3s) delivers exactly what it delivers from Dovecot directly', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'getmail')) return;
    const viaProxy = await getmail('proxy', proxy.pop3s, FETCHMAIL_USER, fm.password, certs.caCertPath);
    const direct = await getmail(
      'direct',
      d.popsPort,
      d.passwordUser.user,
      d.passwordUser.password,
      join(home.dir, 'dovecot-ca.pem'),
    );
    assert.equal(viaProxy.length, fmOnDisk.length);
    assert.deepEqual(viaProxy, direct);
    // getmail re-generates headers with Python's email package: it refolds folded headers and
    // ends a headers-only message with an empty line. Everything else is the maildrop.
    assert.deepEqual([...new Set(changedKinds(viaProxy))].sort(), ['folded-headers', 'headers-only']);
  });

  it('mutt with a password (STLS) fetches every message byte-identical into a Maildir', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'mutt') || !requirePeer(t, 'tmux')) return;
    const dir = join(home.dir, 'mutt');
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, 'inbox', sub), { recursive: true });
    const muttrc = [
      `set pop_host = "pop://alice@127.0.0.1:${proxy.pop3}"`,
      `set pop_pass = "${phone.password}"`,
      'set pop_authenticators = "user"',
      'set pop_delete = no',
      'set pop_last = no',
      'set ssl_starttls = yes',
      'set ssl_force_tls = yes',
      `set ssl_ca_certificates_file = "${certs.caCertPath}"`,
      'set mbox_type = Maildir',
      `set folder = "${dir}"`,
      `set spoolfile = "${join(dir, 'inbox')}"`,
      'set move = no',
      'set record = ""',
      'set header_cache = ""',
      'set certificate_file = /dev/null',
    ].join('\n');
    await writeFile(join(dir, 'muttrc'), `${muttrc}\n`, { mode: 0o600 });
    // mutt needs a terminal: a detached tmux session with its own socket, waited for to end.
    const socket = join(dir, 'tmux.sock');
    // When mutt exits the session signals a tmux channel the test waits on (`wait-for` returns at
    // once if the signal came first), as the server's mutt test does: no polling.
    const muttCmd = `mutt -n -F ${join(dir, 'muttrc')} -f ${join(dir, 'inbox')} -e 'push <fetch-mail><quit>' 2>${join(dir, 'err')}; tmux -S ${socket} wait-for -S mutt-done`;
    const env = { ...process.env, HOME: dir, TERM: 'xterm' };
    await run('tmux', ['-S', socket, 'new-session', '-d', '-x', '120', '-y', '40', muttCmd], { env });
    await run('tmux', ['-S', socket, 'wait-for', 'mutt-done'], { env });
    await run('tmux', ['-S', socket, 'kill-server'], { env });
    const files = [
      ...(await readdir(join(dir, 'inbox', 'new'))).map((f) => join(dir, 'inbox', 'new', f)),
      ...(await readdir(join(dir, 'inbox', 'cur'))).map((f) => join(dir, 'inbox', 'cur', f)),
    ];
    const err = await readFile(join(dir, 'err'), 'utf8').catch(() => '');
    assert.equal(files.length, fixtures.length, err);
    const got = new Set(await Promise.all(files.map(async (f) => sha(await readFile(f)))));
    const missing = onDisk.map((b, i) => (got.has(sha(b)) ? undefined : fixtures[i]!.kind)).filter(Boolean);
    assert.deepEqual(missing, []);
  });

  it('a revoked app password stops working at the next login; the other device goes on', async (t) => {
    if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'python3')) return;
    const tablet = await addAppPassword(home, 'alice', 'tablet');
    assert.equal((await poplib('pop3', 'user', tablet.password)).code, 0);
    const revoked = await popgate(home, ['proxy', 'passwords', 'revoke', '--account', 'alice', 'tablet']);
    assert.equal(revoked.code, 0, revoked.stderr);
    const c = await WireClient.connect(proxy.pop3);
    await c.line();
    await c.command('USER alice');
    assert.match(
      await c.command(`PASS ${tablet.password}`),
      /^-ERR \[AUTH\] popgate: wrong login name or app password/,
    );
    c.close();
    assert.equal((await poplib('pop3', 'user', phone.password)).code, 0);
  });

  it('a wrong password is refused with [AUTH], throttled with growing delays, audited, and closes the session at the limit', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const before = await readFile(join(home.dir, 'token'));
    const c = await WireClient.connect(proxy.pop3);
    await c.line();
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      await c.command('USER alice');
      answers.push(await c.command(`PASS wrong-${i}`));
    }
    for (const a of answers) assert.match(a, /^-ERR \[AUTH\] /);
    assert.match(await c.line(), /^-ERR \[AUTH\] Too many failed logins/);
    await c.waitClosed();
    assert.equal(c.closed, true);
    const fails = proxy
      .audit()
      .filter((e) => e.event === 'proxy.login.fail' && e.reason === 'bad-password')
      .map((e) => e.delayMs as number);
    assert.ok(fails.length >= 3);
    const last = fails.slice(-3);
    assert.ok(last[0]! > 0 && last[1]! > last[0]! && last[2]! > last[1]!, `delays ${last.join(', ')}`);
    assert.ok(!proxy.stderr().includes('wrong-1'), 'the password is not logged');
    assert.deepEqual(await readFile(join(home.dir, 'token')), before);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.metrics}/metrics`)).text();
    assert.match(metrics, /popgate_proxy_logins_total\{result="fail",mechanism="USER"\} [1-9]/);
    assert.equal((await fetch(`http://127.0.0.1:${proxy.metrics}/healthz`)).status, 200);
  });
});
