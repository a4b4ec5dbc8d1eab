// Real clients against a real `popgate serve` process: curl (OAUTHBEARER via --oauth2-bearer,
// XOAUTH2 via a custom AUTH command; pop3s and STLS; LIST/RETR/DELE), Python's poplib (raw
// AUTH), mutt driven non-interactively with pop_oauth_refresh_command. Tokens come from a real
// issuer (oidc-provider); the server validates them with the JWKS it discovers.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { createTestCerts, type TestCerts } from '../helpers/certs.ts';
import {
  type AuthorizationServer,
  deviceLogin,
  nativeAccount,
  startTestAuthorizationServer,
} from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';
import { xoauth2 } from '../unit/server-helpers.ts';

const USER = 'alice@example.test';
const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
const MESSAGES = [
  'From: a@example.test\r\nSubject: one\r\n\r\nfirst body\r\n',
  'From: b@example.test\r\nSubject: two\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n',
  `From: c@example.test\r\nSubject: three\r\n\r\n${'long line '.repeat(50)}\r\n`,
];

interface Serve {
  proc: ChildProcess;
  pop3s: number;
  pop3: number;
  metrics: number;
  stderr: () => string;
}

async function startServe(args: string[]): Promise<Serve> {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 20_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if ((out.match(/^listening /gm) ?? []).length >= 2) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  const port = (re: RegExp) => Number(re.exec(out)?.[1]);
  return {
    proc,
    pop3s: port(/listening pop3s:\/\/127\.0\.0\.1:(\d+)/),
    pop3: port(/listening pop3:\/\/127\.0\.0\.1:(\d+)/),
    metrics: port(/metrics http:\/\/127\.0\.0\.1:(\d+)/),
    stderr: () => err,
  };
}

function run(
  file: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', timeout: options.timeout ?? 30_000, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

describe('real clients against popgate serve', () => {
  let as: AuthorizationServer;
  let certs: TestCerts;
  let dir: string;
  let serve: Serve;
  let token: string;

  before(async () => {
    as = await startTestAuthorizationServer({ accessTokenTtl: 600 });
    certs = await createTestCerts();
    dir = await mkdtemp(join(tmpdir(), 'popgate-serve-'));
    const store = new MaildirStore(join(dir, 'mail'));
    for (const m of MESSAGES) await store.deliver(USER, Buffer.from(m));
    await store.close();
    serve = await startServe([
      '--listen',
      'pop3s://127.0.0.1:0',
      '--listen',
      'pop3://127.0.0.1:0',
      '--tls-cert',
      certs.server.certPath,
      '--tls-key',
      certs.server.keyPath,
      '--issuer',
      as.issuer,
      '--audience',
      as.pop3Audience,
      '--allow-insecure-issuer',
      '--store',
      `maildir:${join(dir, 'mail')}`,
      '--metrics',
      '127.0.0.1:0',
    ]);
    const account = await nativeAccount(as, 'serve', { resource: as.pop3Audience });
    token = (await deviceLogin(as, account, USER)).accessToken;
  });

  after(async () => {
    if (serve) {
      serve.proc.kill('SIGTERM');
      await new Promise((r) => serve.proc.once('exit', r));
    }
    await as?.stop();
    await certs?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const curlBase = () => ['-sS', '--max-time', '20', '--cacert', certs.caCertPath];

  it('curl lists the maildrop over pop3s with --oauth2-bearer (OAUTHBEARER)', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      `pop3s://127.0.0.1:${serve.pop3s}/`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.trim().split(/\r?\n/),
      MESSAGES.map((m, i) => `${i + 1} ${Buffer.byteLength(m)}`),
    );
  });

  it('curl retrieves a message byte for byte after STLS (pop3 + --ssl-reqd)', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '--ssl-reqd',
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      `pop3://127.0.0.1:${serve.pop3}/2`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, MESSAGES[1]);
  });

  it('curl without --ssl-reqd cannot authenticate in plaintext on the STLS port', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      `pop3://127.0.0.1:${serve.pop3}/`,
    ]);
    assert.notEqual(r.code, 0);
  });

  it('curl logs in with XOAUTH2 through a custom AUTH command', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '-v',
      '-I',
      '-X',
      `AUTH XOAUTH2 ${xoauth2(USER, token)}`,
      `pop3s://127.0.0.1:${serve.pop3s}/`,
    ]);
    const log = r.stderr.replaceAll(xoauth2(USER, token), '[response]');
    assert.equal(r.code, 0, log);
    assert.match(log, /< \+OK Logged in, 3 messages/);
  });

  it('curl with a forged token is refused (Login denied)', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '--oauth2-bearer',
      `${token}x`,
      '-u',
      `${USER}:`,
      `pop3s://127.0.0.1:${serve.pop3s}/`,
    ]);
    assert.equal(r.code, 67, r.stderr);
  });

  it("Python's poplib logs in with raw AUTH XOAUTH2 and OAUTHBEARER and reads UIDL and RETR", async (t) => {
    if (!requirePeer(t, 'python3')) return;
    const script = `
import base64, poplib, ssl, sys, json
ctx = ssl.create_default_context(cafile=sys.argv[1])
out = {}
for mech in ("XOAUTH2", "OAUTHBEARER"):
    p = poplib.POP3_SSL("127.0.0.1", int(sys.argv[2]), context=ctx)
    user, tok = sys.argv[3], sys.stdin.readline().strip() if mech == "XOAUTH2" else tok
    if mech == "XOAUTH2":
        raw = "user=%s\\x01auth=Bearer %s\\x01\\x01" % (user, tok)
    else:
        raw = "n,a=%s,\\x01auth=Bearer %s\\x01\\x01" % (user, tok)
    p._putcmd("AUTH " + mech)
    line = p._getline()[0]
    assert line == b"+ ", line
    p._putcmd(base64.b64encode(raw.encode()).decode())
    out[mech] = p._getresp().decode()
    out["uidl"] = [l.decode() for l in p.uidl()[1]]
    out["retr"] = b"\\r\\n".join(p.retr(2)[1]).decode() + "\\r\\n"
    p.quit()
print(json.dumps(out))
`;
    const r = await run('python3', ['-c', script, certs.caCertPath, String(serve.pop3s), USER], {
      input: `${token}\n`,
    });
    assert.equal(r.code, 0, r.stderr.replaceAll(token, '[token]'));
    const out = JSON.parse(r.stdout);
    assert.match(out.XOAUTH2, /^\+OK Logged in/);
    assert.match(out.OAUTHBEARER, /^\+OK Logged in/);
    assert.equal(out.uidl.length, 3);
    assert.equal(out.retr, MESSAGES[1]);
  });

  for (const muttMech of ['oauthbearer', 'xoauth2'] as const) {
    it(`mutt fetches the maildrop with ${muttMech} through pop_oauth_refresh_command`, async (t) => {
      if (!requirePeer(t, 'mutt') || !requirePeer(t, 'tmux')) return;
      const home = await mkdtemp(join(tmpdir(), 'popgate-mutt-'));
      t.after(() => rm(home, { recursive: true, force: true }));
      const tokenFile = join(home, 'token');
      await writeFile(tokenFile, token, { mode: 0o600 });
      const mbox = join(home, 'inbox');
      await writeFile(mbox, '');
      const muttrc = [
        `set pop_host = "pops://${USER}@127.0.0.1:${serve.pop3s}"`,
        `set pop_authenticators = "${muttMech}"`,
        `set pop_oauth_refresh_command = "cat ${tokenFile}"`,
        'set pop_delete = no',
        'set pop_last = no',
        `set ssl_ca_certificates_file = "${certs.caCertPath}"`,
        'set ssl_verify_host = no',
        'set ssl_starttls = yes',
        `set spoolfile = "${mbox}"`,
        `set mbox = "${mbox}"`,
        `set folder = "${home}"`,
        'set mbox_type = mbox',
        'set move = no',
        'set record = ""',
        'set header_cache = ""',
        'set certificate_file = /dev/null',
      ].join('\n');
      await writeFile(join(home, 'muttrc'), `${muttrc}\n`);
      // mutt needs a terminal (without one it switches to send mode): run it in a detached tmux
      // session with its own socket; when mutt exits, the session signals a tmux channel that
      // the test waits on (`wait-for` also returns at once if the signal came first, and when
      // the server is already gone, which happens only after mutt exited).
      const socket = join(home, 'tmux.sock');
      const muttCmd = `mutt -n -F ${join(home, 'muttrc')} -f ${mbox} -e 'push <fetch-mail><quit>' 2>${join(home, 'err')}; tmux -S ${socket} wait-for -S mutt-done`;
      const env = { ...process.env, HOME: home, TERM: 'xterm' };
      const r = await run('tmux', ['-S', socket, 'new-session', '-d', '-x', '120', '-y', '40', muttCmd], {
        env,
      });
      await run('tmux', ['-S', socket, 'wait-for', 'mutt-done'], { env });
      await run('tmux', ['-S', socket, 'kill-server'], { env });
      r.stderr += await readFile(join(home, 'err'), 'utf8').catch(() => '');
      const inbox = await readFile(mbox, 'utf8');
      const subjects = [...inbox.matchAll(/^Subject: (\w+)$/gm)].map((m) => m[1]);
      assert.deepEqual(subjects, ['one', 'two', 'three'], `mutt exit ${r.code}: ${r.stderr.slice(-500)}`);
      assert.match(inbox, /\n\.leading dot\n\.\.two dots\n/);
    });
  }

  it('the metrics listener reports the logins of these clients', async () => {
    const text = await (await fetch(`http://127.0.0.1:${serve.metrics}/metrics`)).text();
    assert.match(text, /popgate_pop3_logins_total\{result="ok"/);
    assert.equal((await fetch(`http://127.0.0.1:${serve.metrics}/healthz`)).status, 200);
  });

  it('curl DELE marks a message and the server removes it only at QUIT', async (t) => {
    if (!requirePeer(t, 'curl')) return;
    const r = await run('curl', [
      ...curlBase(),
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      '-X',
      'DELE',
      '-I',
      `pop3s://127.0.0.1:${serve.pop3s}/3`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const list = await run('curl', [
      ...curlBase(),
      '--oauth2-bearer',
      token,
      '-u',
      `${USER}:`,
      `pop3s://127.0.0.1:${serve.pop3s}/`,
    ]);
    assert.deepEqual(
      list.stdout.trim().split(/\r?\n/),
      MESSAGES.slice(0, 2).map((m, i) => `${i + 1} ${Buffer.byteLength(m)}`),
    );
    const files = await readdir(join(dir, 'mail', USER, 'cur')).catch(() => []);
    const fresh = await readdir(join(dir, 'mail', USER, 'new')).catch(() => []);
    assert.equal(files.length + fresh.length, 2);
  });

  it('SIGTERM stops the server cleanly with exit code 0', async () => {
    serve.proc.kill('SIGTERM');
    const code = await new Promise((r) => serve.proc.once('exit', r));
    assert.equal(code, 0, serve.stderr());
    assert.ok(!serve.stderr().includes(token), 'the token never reaches the log');
    serve = undefined as unknown as Serve;
  });
});
