// The passphrase prompt on a real terminal: `popgate login --passphrase-prompt` in tmux, the test
// typing with send-keys and reading the screen with capture-pane. The passphrase never appears on
// the screen, a new one is asked twice, the terminal echoes again afterwards, and the tokens open
// with the same passphrase through POPGATE_PASSPHRASE (and not with another one). A later command
// asks once, because the choice was recorded.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import {
  type AuthorizationServer,
  clientCredentialsAccountToml,
  startTestAuthorizationServer,
  tempDir,
} from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';
import { appendTestLog } from '../helpers/test-log.ts';

const exec = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const bin = join(root, 'bin', 'popgate.js');
const PASSPHRASE = 'tidal-lantern-tty-42';
const WRONG_PASSPHRASE = 'another passphrase, not the one chosen';
// The passphrases are secrets of this run: the scan looks for them in every output (the tmux
// screens included) and for the key the right one derives (see home.cleanup below).
recordTestSecret(PASSPHRASE);
recordTestSecret(WRONG_PASSPHRASE);

let as: AuthorizationServer;
let home: Awaited<ReturnType<typeof tempDir>>;
let env: Record<string, string>;
let socket: string;
let tmuxStarted = false;

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 300 });
  home = await tempDir('popgate-tty-');
  socket = join(home.dir, 'tmux.sock');
  await mkdir(join(home.dir, 'config', 'popgate'), { recursive: true });
  const secretFile = join(home.dir, 'client-secret');
  await writeFile(secretFile, `${as.clients.secretBasic.clientSecret}\n`, { mode: 0o600 });
  await writeFile(
    join(home.dir, 'config', 'popgate', 'config.toml'),
    clientCredentialsAccountToml(as, 'app', as.clients.secretBasic.clientId, [
      `client_secret_file = "${secretFile}"`,
    ]),
  );
  env = {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TERM: 'xterm',
  };
});

after(async () => {
  if (tmuxStarted) await exec('tmux', ['-S', socket, 'kill-server']).catch(() => {});
  await as.stop();
  // `client-secret` is this test's client_secret_file fixture: plain text by design.
  await home.cleanup({ except: ['client-secret'], passphrases: [PASSPHRASE, WRONG_PASSPHRASE] });
});

/** Starts `popgate ARGS` in a new tmux window; the script reports the exit code and the echo state. */
async function startInTmux(name: string, args: string[]): Promise<void> {
  const script = join(home.dir, `${name}.sh`);
  const exports = Object.entries(env)
    .map(([key, value]) => `export ${key}=${JSON.stringify(value)}`)
    .join('\n');
  await writeFile(
    script,
    `${exports}\ncd ${JSON.stringify(root)}\nnode ${JSON.stringify(bin)} ${args.join(' ')}\necho "EXIT=$?"\nif stty -a | grep -q ' echo '; then echo ECHO-ON; else echo ECHO-OFF; fi\nsleep 120\n`,
  );
  const command = tmuxStarted ? 'new-window' : 'new-session';
  const target = tmuxStarted
    ? ['-t', 'popgate', '-n', name]
    : ['-d', '-s', 'popgate', '-n', name, '-x', '160', '-y', '40'];
  await exec('tmux', ['-S', socket, '-f', '/dev/null', command, ...target, `sh ${script}`], { env });
  tmuxStarted = true;
}

async function screen(name: string): Promise<string> {
  const { stdout } = await exec('tmux', ['-S', socket, 'capture-pane', '-p', '-J', '-t', `popgate:${name}`]);
  return stdout;
}

/** Waits (at most 60 s) until the window shows `pattern`. */
async function waitFor(name: string, pattern: RegExp): Promise<string> {
  let last = '';
  for (let i = 0; i < 600; i++) {
    last = await screen(name);
    if (pattern.test(last)) {
      // What the terminal showed goes to the run's secret scan (the test keeps it in memory).
      appendTestLog('oauth-passphrase-tty-screen', last);
      return last;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  appendTestLog('oauth-passphrase-tty-screen', last);
  throw new Error(`timed out waiting for ${pattern} in window ${name}; screen:\n${last}`);
}

async function type(name: string, text: string): Promise<void> {
  await exec('tmux', ['-S', socket, 'send-keys', '-t', `popgate:${name}`, '-l', text]);
  await exec('tmux', ['-S', socket, 'send-keys', '-t', `popgate:${name}`, 'Enter']);
}

function popgate(
  args: string[],
  extra: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('passphrase prompt on a terminal (tmux)', () => {
  test('login --passphrase-prompt asks twice without echo and the tokens open with that passphrase', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    await startInTmux('login', ['login', '--account', 'app', '--passphrase-prompt']);
    await waitFor('login', /Passphrase: $/m);
    await type('login', PASSPHRASE);
    await waitFor('login', /Repeat the passphrase: $/m);
    await type('login', PASSPHRASE);
    const shown = await waitFor('login', /ECHO-O(N|FF)/);
    assert.match(shown, /Choose a passphrase for the popgate token store/);
    assert.match(shown, /Logged in account app/);
    assert.match(shown, /key: passphrase/);
    assert.match(shown, /EXIT=0/);
    assert.match(shown, /ECHO-ON/, 'the terminal echoes again after the prompt');
    assert.ok(!shown.includes(PASSPHRASE), `the passphrase is on the screen:\n${shown}`);
    assert.ok(!shown.includes('tidal'), 'no part of the passphrase is on the screen');

    const dataDir = join(home.dir, 'data', 'popgate');
    assert.equal((await readFile(join(dataDir, 'key-source'), 'utf8')).trim(), 'passphrase');
    const right = await popgate(['token', 'print', '--account', 'app'], { POPGATE_PASSPHRASE: PASSPHRASE });
    assert.equal(right.code, 0, right.stderr);
    assert.match(right.stdout.trim(), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    const wrong = await popgate(['token', 'print', '--account', 'app'], {
      POPGATE_PASSPHRASE: WRONG_PASSPHRASE,
    });
    assert.equal(wrong.code, 78);
    assert.match(wrong.stderr, /wrong passphrase/);
    const noTerminal = await popgate(['token', 'print', '--account', 'app'], {});
    assert.equal(noTerminal.code, 78);
    assert.match(noTerminal.stderr, /protected by a passphrase: set POPGATE_PASSPHRASE/);
  });

  test('a later command asks once, because the passphrase choice was recorded', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    await startInTmux('status', ['token', 'status']);
    await waitFor('status', /Passphrase: $/m);
    await type('status', PASSPHRASE);
    const shown = await waitFor('status', /ECHO-O(N|FF)/);
    assert.doesNotMatch(shown, /Repeat the passphrase/);
    assert.match(shown, /key: passphrase \(scrypt, salt .*\) \(recorded in .*key-source\)/);
    assert.match(shown, /account app: ok/);
    assert.match(shown, /EXIT=0/);
    assert.ok(!shown.includes(PASSPHRASE));
  });
});
