// `--token-command` as the library runs it (a real /bin/sh): the timeout bounds the wait even when
// the command left a child holding its output open, POPGATE_FORCE_REFRESH tells a refresh from a
// first ask, and a non-zero exit is a typed error with the helper's stderr, never its stdout.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import { tokenCommandProvider } from '../../src/fetch/token-source.ts';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-tokcmd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('token_command: the timeout ends the wait even when a child of the command keeps stdout open', async (t) => {
  const dir = await tempDir(t);
  const pidFile = join(dir, 'sleeper.pid');
  // The shell forks `sleep` (which inherits stdout) and waits: killing the shell alone leaves the
  // pipe open until `sleep` ends. The test must not wait for that.
  const provider = tokenCommandProvider(`sleep 600 & echo $! > ${pidFile}; wait; echo never`, env, 300);
  await assert.rejects(provider({ forceRefresh: false }), (error: unknown) => {
    assert.ok(isPopgateError(error, 'ERR_OAUTH_TRANSIENT'));
    assert.match((error as Error).message, /token_command did not finish within 300 ms and was stopped/);
    return true;
  });
  // The sleeper is an orphan now; end it here (the temp dir holding its pid goes in t.after).
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
  if (pid > 0) process.kill(pid, 'SIGKILL');
});

test('token_command: POPGATE_FORCE_REFRESH is 0 on a first ask and 1 when the server refused the token', async () => {
  const provider = tokenCommandProvider('echo "tok-$POPGATE_FORCE_REFRESH"', env);
  assert.equal(await provider({ forceRefresh: false }), 'tok-0');
  assert.equal(await provider({ forceRefresh: true }), 'tok-1');
});

test('token_command: a non-zero exit is ERR_OAUTH_TRANSIENT with its stderr and without its stdout', async () => {
  const provider = tokenCommandProvider('echo half-a-token; echo "helper: no network" >&2; exit 3', env);
  await assert.rejects(provider({ forceRefresh: false }), (error: unknown) => {
    assert.ok(isPopgateError(error, 'ERR_OAUTH_TRANSIENT'));
    assert.match((error as Error).message, /token_command exited with status 3: helper: no network/);
    assert.doesNotMatch(JSON.stringify(error) + String((error as Error).message), /half-a-token/);
    return true;
  });
});
