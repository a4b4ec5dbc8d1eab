// `popgate deliver` as Postfix's mailbox_command runs it: a separate process, the message on
// stdin, the verdict in the exit status (sysexits). The disk-full case runs on a real, tiny tmpfs
// mounted in a private mount namespace (unshare), so ENOSPC comes from the kernel.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { inCI } from '../helpers/peers.ts';
import { removeTempTree } from '../helpers/test-log.ts';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;

function run(
  args: string[],
  input: Buffer | string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, POPGATE_STORE: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'popgate-deliver-'));
  // The Maildir popgate delivered into goes to the run's secret scan first.
  t.after(() => removeTempTree(root));
  return root;
}

test('deliver exits 0 once the message is in new/ and the next session serves it with CRLF', async (t) => {
  const root = await tempRoot(t);
  const message = 'From: postfix@example.org\nSubject: hello\n\nline one\n.line two\n';
  const result = await run(['deliver', '--user', 'Erin@Example.org', '--store', `maildir:${root}`], message);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  const names = await readdir(join(root, 'erin@example.org', 'new'));
  assert.equal(names.length, 1);
  assert.match(names[0]!, /^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\.[^,]+,S=\d+,W=\d+$/);
  assert.deepEqual(await readdir(join(root, 'erin@example.org', 'tmp')), []);
  const session = await new MaildirStore(root).open('erin@example.org');
  const chunks: Buffer[] = [];
  for await (const chunk of await session.read(0)) chunks.push(chunk as Buffer);
  await session.release();
  assert.equal(Buffer.concat(chunks).toString(), message.replaceAll('\n', '\r\n'));
});

test('deliver takes the store from POPGATE_STORE when --store is absent', async (t) => {
  const root = await tempRoot(t);
  const result = await run(['deliver', '--user', 'erin'], 'Subject: x\n\ny\n', {
    POPGATE_STORE: `maildir:${root}`,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal((await readdir(join(root, 'erin', 'new'))).length, 1);
});

test('deliver --keep-case delivers to the maildrop of a case-sensitive sub, as the server opens it', async (t) => {
  const root = await tempRoot(t);
  const result = await run(
    ['deliver', '--user', 'AbC-Sub', '--keep-case', '--store', `maildir:${root}`],
    'Subject: x\n\ny\n',
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(await readdir(root), ['AbC-Sub']);
  const session = await new MaildirStore(root).open('AbC-Sub');
  assert.equal(session.messages.length, 1);
  await session.release();
});

test('an empty message exits 65 (data error: the MTA bounces) and delivers nothing', async (t) => {
  const root = await tempRoot(t);
  const result = await run(['deliver', '--user', 'erin', '--store', `maildir:${root}`], '');
  assert.equal(result.code, 65);
  assert.match(result.stderr, /ERR_STORE_INVALID_MESSAGE/);
  assert.deepEqual(await readdir(join(root, 'erin', 'new')), []);
  assert.deepEqual(await readdir(join(root, 'erin', 'tmp')), []);
});

test('a message over --max-size exits 65 and leaves no temp file', async (t) => {
  const root = await tempRoot(t);
  const result = await run(
    ['deliver', '--user', 'erin', '--store', `maildir:${root}`, '--max-size', '100'],
    'x'.repeat(5000),
  );
  assert.equal(result.code, 65);
  assert.deepEqual(await readdir(join(root, 'erin', 'tmp')), []);
});

test('configuration errors exit 78: unsafe user, missing or relative store', async (t) => {
  const root = await tempRoot(t);
  const cases: string[][] = [
    ['deliver', '--user', '../etc', '--store', `maildir:${root}`],
    ['deliver', '--user', 'erin'],
    ['deliver', '--user', 'erin', '--store', 'maildir:relative/dir'],
    ['deliver', '--store', `maildir:${root}`],
  ];
  for (const args of cases) {
    const result = await run(args, 'Subject: x\n\ny\n');
    assert.equal(result.code, 78, `${args.join(' ')}: ${result.stderr}`);
  }
  assert.deepEqual(await readdir(root), []);
});

test('a store root that does not exist is a temporary failure (75): the MTA keeps the mail', async (t) => {
  const root = await tempRoot(t);
  const result = await run(
    ['deliver', '--user', 'erin', '--store', `maildir:${root}/missing/deeper`],
    'Subject: x\n\ny\n',
  );
  assert.equal(result.code, 75, result.stderr);
  assert.match(result.stderr, /ERR_STORE_NOT_FOUND/);
});

test('concurrent deliveries from separate processes each get their own UID', async (t) => {
  const root = await tempRoot(t);
  const count = 4;
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      run(['deliver', '--user', 'erin', '--store', `maildir:${root}`], `Subject: ${i}\n\nbody ${i}\n`),
    ),
  );
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const session = await new MaildirStore(root).open('erin');
  assert.equal(session.messages.length, count);
  assert.equal(new Set(session.messages.map((m) => m.uid)).size, count);
  await session.release();
});

test('a full disk (ENOSPC on a real tmpfs) exits 75 with ERR_STORE_FULL and leaves no temp file', async (t) => {
  try {
    execFileSync('unshare', ['-rm', 'true'], { stdio: 'ignore' });
  } catch {
    const reason = 'unshare -rm is not permitted here: cannot mount a private tmpfs';
    if (inCI) throw new Error(reason);
    t.skip(reason);
    return;
  }
  const root = await tempRoot(t);
  const script = [
    'set -e',
    'mount -t tmpfs -o size=64k popgate-full "$1"',
    'set +e',
    'head -c 300000 /dev/zero | tr "\\0" "x" | "$2" "$3" deliver --user erin --store "maildir:$1"',
    'echo "rc=$?"',
    'echo "tmp=$(ls -A "$1/erin/tmp" | wc -l) new=$(ls -A "$1/erin/new" | wc -l)"',
  ].join('\n');
  const out = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('unshare', ['-rm', 'sh', '-c', script, 'sh', root, process.execPath, BIN], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', () => resolve({ stdout, stderr }));
  });
  assert.match(out.stdout, /rc=75\n/, out.stderr);
  assert.match(out.stderr, /ERR_STORE_FULL/);
  assert.match(out.stdout, /tmp=0 new=0/);
});

test('a delivery by a user that does not own the Maildir exits 75 with ERR_STORE_UNSAFE_FILE and leaves nothing', async (t) => {
  if (process.geteuid?.() !== 0) {
    t.diagnostic('not root: cannot run the delivery as another user');
    return;
  }
  const root = await tempRoot(t);
  const maildir = join(root, 'frank@example.org');
  // Writable by everyone, owned by root: nobody (65534) can write into it but does not own it.
  for (const d of [root, maildir, join(maildir, 'tmp'), join(maildir, 'new'), join(maildir, 'cur')]) {
    await mkdir(d, { recursive: true });
    await chmod(d, 0o777);
  }
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [BIN, 'deliver', '--user', 'frank@example.org', '--store', `maildir:${root}`],
      {
        env: { ...process.env, POPGATE_STORE: '', HOME: root, XDG_CONFIG_HOME: root, XDG_STATE_HOME: root },
        stdio: ['pipe', 'ignore', 'pipe'],
        uid: 65534,
        gid: 65534,
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
    child.stdin.end('Subject: from nobody\n\nhi\n');
  });
  assert.equal(result.code, 75, result.stderr);
  assert.match(result.stderr, /ERR_STORE_UNSAFE_FILE/);
  assert.deepEqual(await readdir(join(maildir, 'new')), []);
  assert.deepEqual(await readdir(join(maildir, 'tmp')), []);
});
