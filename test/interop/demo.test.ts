// `npm start` in a fresh clone: the demo must finish with exit 0 and leave the seeded messages,
// byte for byte, in its Maildir, with nothing fetched twice and no token in plain text.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { demoMessages, lateMessage } from '../../dev/demo/seed-messages.ts';
import { requirePeer } from '../helpers/peers.ts';
import { scanTreeBeforeRemoval } from '../helpers/test-log.ts';

const repo = new URL('../..', import.meta.url).pathname;

function withoutDate(bytes: Buffer): string {
  return bytes.toString('utf8').replace(/^Date: .*\n/m, '');
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).map((name) => join(dir, name));
  } catch {
    return [];
  }
}

test('npm start in a fresh clone runs the whole demo and leaves every seeded message once in its Maildir', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const work = await mkdtemp(join(tmpdir(), 'popgate-demo-test-'));
  t.after(async () => {
    // The demo's own files (its CA, config, token store, state, Maildirs) go to the run's secret
    // scan first; the rest of the clone is the repository.
    scanTreeBeforeRemoval(join(work, 'popgate', 'popgate-demo'));
    await rm(work, { recursive: true, force: true });
  });
  const clone = join(work, 'popgate');
  execFileSync('git', ['clone', '--quiet', '--no-hardlinks', repo, clone]);
  // The clone gets the checkout's installed dependencies instead of a second `npm ci`.
  await symlink(join(repo, 'node_modules'), join(clone, 'node_modules'));

  const output = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: clone,
      env: { ...process.env, CI: 'true', DISPLAY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, text }));
  });
  assert.equal(output.code, 0, output.text);
  assert.match(output.text, /Done: \d+ checks passed/);
  // On a supported Node.js line (22, 24) the demo prints no runtime warning (oidc-provider warns on 20).
  if (Number(process.versions.node.split('.')[0]) >= 22) {
    assert.doesNotMatch(output.text, /Unsupported runtime|WARNING/, output.text);
  }

  const runs = (await readdir(join(clone, 'popgate-demo'))).filter((name) => name.startsWith('run-'));
  assert.equal(runs.length, 1);
  const runDir = join(clone, 'popgate-demo', runs[0]!);
  const maildir = join(runDir, 'Maildir');
  const files = [...(await filesIn(join(maildir, 'new'))), ...(await filesIn(join(maildir, 'cur')))];
  const fetched = (await Promise.all(files.map((f) => readFile(f)))).map(withoutDate).sort();
  const expected = [...demoMessages('demo@example.test'), lateMessage('demo@example.test')]
    .map((m) => withoutDate(m.bytes))
    .sort();
  assert.deepEqual(fetched, expected);

  // Logout removed the tokens; whatever remains under data/ and state/ holds no JWT.
  for (const sub of ['data', 'state']) {
    const listing = execFileSync('find', [join(runDir, sub), '-type', 'f'], { encoding: 'utf8' }).trim();
    for (const file of listing ? listing.split('\n') : []) {
      const text = await readFile(file, 'latin1');
      assert.doesNotMatch(text, /eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/, `${file} holds a JWT in plain text`);
    }
  }
});
