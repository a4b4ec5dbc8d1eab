// Proves the Dovecot harness (test/helpers/dovecot.ts) that the client, fetch and server tests
// build on: a real Dovecot from apt, real curl, tokens minted by the harness.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { after, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { createSigningKey } from '../../dev/jwt-keys.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { requirePeer } from '../helpers/peers.ts';

const USER = 'alice@example.test';
const MESSAGES = [
  'From: a@example.test\nSubject: one\n\nfirst body\n',
  'From: b@example.test\nSubject: two\n\n.starts with a dot\n..two dots\n.\nend\n',
];

let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= (async () => {
    const instance = await startDovecot({ users: [USER] });
    const maildir = await instance.maildirOf(USER);
    for (const [i, body] of MESSAGES.entries()) {
      await writeFile(`${maildir}/new/100000000${i}.M${i}P1.harness`, body);
    }
    return instance;
  })();
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const expectedList = MESSAGES.map(
  (m, i) => `${i + 1} ${Buffer.byteLength(m.replaceAll('\n', '\r\n'))}\r\n`,
).join('');

test('Dovecot greets on the STLS port and the implicit-TLS port and offers PIPELINING and OAuth SASL', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const capa = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: d.host, port: d.popsPort, ca: d.caCertPem, servername: 'localhost' });
    let text = '';
    socket.setTimeout(5000, () => reject(new Error(`timeout; got ${text}`)));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (/\r\n\.\r\n$/.test(text)) {
        socket.end('QUIT\r\n');
        resolve(text);
      }
    });
    socket.once('secureConnect', () => socket.write('CAPA\r\n'));
  });
  assert.match(capa, /^\+OK/);
  assert.match(capa, /\r\nPIPELINING\r\n/);
  assert.match(capa, /\r\nUIDL\r\n/);
  assert.match(capa, /\r\nSASL [^\r]*OAUTHBEARER/);
  assert.match(capa, /\r\nSASL [^\r]*XOAUTH2/);
  const plainGreeting = await new Promise<string>((resolve, reject) => {
    const socket = netConnect({ host: d.host, port: d.popPort });
    socket.on('error', reject);
    socket.once('data', (chunk: Buffer) => {
      socket.end('QUIT\r\n');
      resolve(chunk.toString('latin1'));
    });
  });
  assert.match(plainGreeting, /^\+OK/);
});

test('curl lists the mailbox with a minted token over implicit TLS (pop3s, OAUTHBEARER)', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const token = await d.mintToken(USER);
  const r = await curl([
    '--oauth2-bearer',
    token,
    '-u',
    `${USER}:`,
    '--cacert',
    d.caCertPath,
    `pop3s://${d.host}:${d.popsPort}/`,
  ]);
  assert.equal(r.code, 0, `${r.stderr}\n${await d.readLog()}`);
  assert.equal(r.stdout, expectedList);
});

test('curl lists the mailbox with a minted token after STLS (pop3 + --ssl-reqd)', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const token = await d.mintToken(USER);
  const r = await curl([
    '--ssl-reqd',
    '--oauth2-bearer',
    token,
    '-u',
    `${USER}:`,
    '--cacert',
    d.caCertPath,
    `pop3://${d.host}:${d.popPort}/`,
  ]);
  assert.equal(r.code, 0, `${r.stderr}\n${await d.readLog()}`);
  assert.equal(r.stdout, expectedList);
});

test('curl retrieves a message whose lines start with dots, byte for byte', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const token = await d.mintToken(USER);
  const args = ['--oauth2-bearer', token, '-u', `${USER}:`, '--cacert', d.caCertPath];
  const r = await curl([...args, `pop3s://${d.host}:${d.popsPort}/2`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, MESSAGES[1]!.replaceAll('\n', '\r\n'));
});

/** Sends lines one at a time over implicit TLS and returns each first answer line. */
async function converse(d: DovecotInstance, lines: readonly string[]): Promise<string[]> {
  const socket = tlsConnect({ host: d.host, port: d.popsPort, ca: d.caCertPem, servername: 'localhost' });
  const answers: string[] = [];
  let buffer = '';
  let waiting: ((line: string) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (let i = buffer.indexOf('\r\n'); i !== -1 && waiting; i = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const w = waiting;
      waiting = undefined;
      w(line);
    }
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer; have ${answers.join(' | ')}`)), 10_000);
      waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      socket.emit('data', Buffer.alloc(0));
    });
  try {
    await next(); // greeting
    for (const line of lines) {
      socket.write(`${line}\r\n`);
      answers.push(await next());
    }
  } finally {
    socket.end('QUIT\r\n');
  }
  return answers;
}

test('XOAUTH2 with a minted token logs in (raw AUTH over implicit TLS)', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const token = await d.mintToken(USER);
  const ir = Buffer.from(`user=${USER}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
  const [auth, stat] = await converse(d, [`AUTH XOAUTH2 ${ir}`, 'STAT']);
  assert.match(auth!, /^\+OK/);
  assert.match(stat!, /^\+OK 2 /);
});

test('OAUTHBEARER failure sends the RFC 7628 error challenge, then -ERR [AUTH] after %x01', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const token = await d.mintToken(USER, { expiresIn: -300 });
  const ir = Buffer.from(`n,a=${USER},\x01auth=Bearer ${token}\x01\x01`).toString('base64');
  const [challenge, final] = await converse(d, [`AUTH OAUTHBEARER ${ir}`, 'AQ==']);
  assert.match(challenge!, /^\+ /);
  assert.equal(JSON.parse(Buffer.from(challenge!.slice(2), 'base64').toString()).status, 'invalid_token');
  assert.match(final!, /^-ERR \[AUTH\]/);
});

test('a token signed by a key Dovecot does not trust is refused', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const forger = await createSigningKey({ alg: d.signingKey.alg, kid: d.signingKey.kid });
  const token = await d.mintToken(USER, { signWith: forger });
  const r = await curl([
    '--oauth2-bearer',
    token,
    '-u',
    `${USER}:`,
    '--cacert',
    d.caCertPath,
    `pop3s://${d.host}:${d.popsPort}/`,
  ]);
  assert.equal(r.code, 67, `curl should report "Login denied"; got ${r.code} ${r.stderr}`);
  assert.match(await d.readLog(), /Incorrect JWT signature|Bad signature/);
});

test('an expired token and a token for another user are refused', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const base = ['--cacert', d.caCertPath, `pop3s://${d.host}:${d.popsPort}/`];
  const expired = await d.mintToken(USER, { expiresIn: -120 });
  assert.equal((await curl(['--oauth2-bearer', expired, '-u', `${USER}:`, ...base])).code, 67);
  const other = await d.mintToken('mallory@example.test');
  assert.equal((await curl(['--oauth2-bearer', other, '-u', `${USER}:`, ...base])).code, 67);
  // and a good one still works right after (no auth penalty left behind)
  const good = await d.mintToken(USER);
  assert.equal((await curl(['--oauth2-bearer', good, '-u', `${USER}:`, ...base])).code, 0);
});

test('the password user logs in with USER/PASS and a wrong password is refused', async (t) => {
  if (!requirePeer(t, 'dovecot') || !requirePeer(t, 'curl')) return;
  const d = await dovecot();
  const { user, password } = d.passwordUser;
  const url = `pop3s://${d.host}:${d.popsPort}/`;
  const ok = await curl(['-u', `${user}:${password}`, '--cacert', d.caCertPath, url]);
  assert.equal(ok.code, 0, `${ok.stderr}\n${await d.readLog()}`);
  assert.equal(ok.stdout.trim(), '', 'the password user has an empty maildrop');
  const bad = await curl(['-u', `${user}:wrong-${password}`, '--cacert', d.caCertPath, url]);
  assert.equal(bad.code, 67);
});

test('stop() ends Dovecot and removes its directory', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await startDovecot();
  await d.stop();
  assert.equal(existsSync(d.dir), false);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = netConnect({ host: d.host, port: d.popPort });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  assert.equal(refused, true);
});

test('Dovecot dies with the process that started it, even after SIGKILL', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const helper = new URL('../helpers/dovecot.ts', import.meta.url).href;
  const code = `const { startDovecot } = await import(${JSON.stringify(helper)});
const d = await startDovecot();
process.stdout.write(JSON.stringify({ port: d.popPort, dir: d.dir }) + '\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise<{ port: number; dir: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(JSON.parse(out));
    });
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  child.kill('SIGKILL');
  let listening = true;
  for (let i = 0; i < 100 && listening; i++) {
    await new Promise((r) => setTimeout(r, 100));
    listening = await new Promise<boolean>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: info.port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }
  // A SIGKILLed process cannot remove its temp dir; do it here.
  const { rm } = await import('node:fs/promises');
  await rm(info.dir, { recursive: true, force: true });
  assert.equal(listening, false, 'Dovecot still listens after its owner was killed');
});
