// The run's secret scan reads what the tests' children print (issue 11): test/run.mjs hands this
// file a canary in POPGATE_TEST_CAPTURE_CANARY, three real children print it — a popgate CLI child
// on stderr (an error naming the unknown account), one on stdout (`token status` names it), and a
// plain node child on stderr — and nothing else ever writes it. After the run the runner requires
// the canary in two child stderr captures and one child stdout capture of the log dir, and nowhere
// else: so a capture (test/helpers/output-capture.mjs) that stopped teeing fails the run, where the
// runner's own canary in the log dir only proves the scanner.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const BIN = new URL('../../bin/popgate.js', import.meta.url).pathname;
// Outside test/run.mjs a canary of our own: the children are still checked to print it.
const canary = process.env.POPGATE_TEST_CAPTURE_CANARY ?? randomBytes(24).toString('base64url');

/** Runs `node ARGS` with pipes; resolves with its output once it closed. */
function node(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

async function home(t: { after(fn: () => Promise<void>): void }): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-capture-canary-'));
  // Removed without the tree scan: the canary must reach the scan through the children only.
  t.after(() => rm(dir, { recursive: true, force: true }));
  return {
    HOME: dir,
    PATH: process.env.PATH ?? '',
    POPGATE_KEY_SOURCE: 'file',
    ...(process.env.POPGATE_RUN_DIST ? { POPGATE_RUN_DIST: process.env.POPGATE_RUN_DIST } : {}),
  };
}

// Assertions name no value: the canary appears in the children's output only.
test('a popgate child prints the canary on stderr (an unknown account), and the test still reads it', async (t) => {
  const r = await node([BIN, 'fetch', '--account', canary], await home(t));
  assert.equal(r.code, 78);
  assert.ok(r.err.includes(canary), 'the popgate child did not print the canary on stderr');
  assert.ok(!r.out.includes(canary), 'the canary went to stdout too');
});

test('a popgate child prints the canary on stdout (token status of an account with no tokens)', async (t) => {
  const r = await node([BIN, 'token', 'status', '--account', canary], await home(t));
  assert.equal(r.code, 77);
  assert.ok(r.out.includes(canary), 'the popgate child did not print the canary on stdout');
});

test('a node child prints the canary on stderr', async (t) => {
  const env = { ...(await home(t)), CAPTURE_CANARY: canary };
  const r = await node(
    ['-e', "process.stderr.write('capture canary: ' + process.env.CAPTURE_CANARY + '\\n')"],
    env,
  );
  assert.equal(r.code, 0);
  assert.ok(r.err.includes(canary), 'the node child did not print the canary on stderr');
});
