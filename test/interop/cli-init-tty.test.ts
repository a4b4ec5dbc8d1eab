// `popgate init` on a real terminal (tmux): each answer is checked when it is given and asked
// again with what was wrong, with the config loader's own rules and one phrasing per fault; a
// custom account is asked for its flow, scopes, TLS mode and CA (checked as a CA file), so it
// works behind a private CA; init then runs `popgate login` and `popgate doctor` when asked,
// against the development authorization server on https with a throwaway CA. With every answer
// given as a flag, init asks nothing, even on a terminal.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDevCa, type DevCa } from '../../dev/certs.ts';
import { parseConfig } from '../../src/cli/config.ts';
import { type AuthorizationServer, startTestAuthorizationServer, tempDir } from '../helpers/oidc.ts';
import { requirePeer } from '../helpers/peers.ts';
import { type Tmux, tmuxSession } from '../helpers/tmux.ts';

let as: AuthorizationServer;
let ca: DevCa;
let home: { dir: string; cleanup: () => Promise<void> };
let env: Record<string, string>;
let tmux: Tmux;

before(async () => {
  home = await tempDir('popgate-init-tty-');
  ca = await createDevCa(join(home.dir, 'ca'));
  const cert = await ca.issue('authorization-server');
  as = await startTestAuthorizationServer({
    tls: { cert: cert.certPem, key: cert.keyPem, ca: ca.caCertPem },
  });
  env = {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    POPGATE_KEY_SOURCE: 'file',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TERM: 'xterm',
  };
  tmux = tmuxSession(home.dir, env);
});

after(async () => {
  await tmux?.stop();
  await as?.stop();
  await home?.cleanup();
});

const count = (text: string, part: string): number => text.split(part).length - 1;
const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1) ?? '';

/** Waits until `prompt` is on the screen for the `nth` time and is the line awaiting input. */
async function answer(window: string, prompt: string, text: string, nth = 1): Promise<string> {
  const shown = await tmux.waitFor(
    window,
    (screen) => count(screen, prompt) >= nth && lastLine(screen).startsWith(prompt),
  );
  await tmux.type(window, text);
  return shown;
}

describe('popgate init on a terminal (tmux)', () => {
  test('each answer is checked when given and asked again; a private-CA custom account then logs in and doctor finds its token', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    const w = 'init';
    await tmux.start(w, ['init']);
    await answer(w, 'Account name', 'my mail');
    await answer(w, 'Account name', 'mail', 2);
    await answer(w, 'Provider', 'gogle');
    await answer(w, 'Provider', 'custom', 2);
    await answer(w, 'Email address', 'alice@example.test');
    await answer(w, 'OAuth client id', as.clients.native.clientId);
    await answer(w, 'Authorization server issuer URL', 'not a url');
    await answer(w, 'Authorization server issuer URL', 'http://issuer.example', 2);
    await answer(w, 'Authorization server issuer URL', as.issuer, 3);
    await answer(w, 'Login flow', 'devise');
    await answer(w, 'Login flow', 'device', 2);
    await answer(w, 'Scopes', 'pop3 offline_access');
    await answer(w, 'POP3 server host', '127.0.0.1');
    await answer(w, 'POP3 TLS', '');
    await answer(w, 'POP3 port', 'abc');
    await answer(w, 'POP3 port', '99999', 2);
    await answer(w, 'POP3 port', '995', 3);
    await answer(w, 'Extra CA certificate', join(home.dir, 'no-such-ca.pem'));
    await answer(w, 'Extra CA certificate', ca.caCertPath, 2);
    await answer(w, 'Where mail goes', '');
    const offered = await answer(w, 'Log in now', 'y');

    // Every fault was named when it was made, and the question came again.
    assert.match(offered, /account names use letters, digits, "\.", "_" and "-"/);
    assert.match(
      offered,
      /"provider" must be one of microsoft, google, fastmail, zoho, custom \(did you mean "google"\?\)/,
    );
    assert.match(offered, /the issuer is not a valid URL/);
    assert.match(offered, /the issuer http:\/\/issuer\.example must use https/);
    assert.match(
      offered,
      /"flow" must be one of device, browser, client-credentials \(did you mean "device"\?\)/,
    );
    assert.match(offered, /cannot read the CA file .*no-such-ca\.pem \(ENOENT\)/);
    // One phrasing for a port that is not a number and one that is out of range.
    assert.equal(count(offered, '"port" must be a port from 1 to 65535'), 2, offered);
    // With one account configured, the commands need no --account.
    assert.match(offered, /Log in now \(popgate login\)\? \[y\/N\]/);

    const prompt = await tmux.waitFor(w, /enter the code: (\S+)/);
    const userCode = /enter the code: (\S+)/.exec(prompt)?.[1] ?? '';
    await as.approveDevice(userCode, 'alice@example.test');
    await tmux.waitFor(w, /Logged in account mail/);
    await answer(w, 'Run popgate doctor now', 'y');
    const done = await tmux.waitFor(w, /EXIT=\d+/);
    assert.match(done, /\[mail\] alice@example\.test/, 'doctor ran');
    assert.match(done, /token\s+ok/, 'doctor found the token the login stored');
    // Nothing listens on the POP3 port: doctor says so, init ends with its code and keeps it in the hints.
    assert.match(done, /tcp\s+FAIL\s+127\.0\.0\.1:995 unreachable/);
    assert.match(done, /next: popgate doctor, then popgate fetch\nEXIT=75/);

    const config = parseConfig(
      await readFile(join(home.dir, 'config', 'popgate', 'config.toml'), 'utf8'),
      'c',
    );
    const account = config.accounts.get('mail');
    assert.equal(account?.provider, 'custom');
    assert.equal(account?.issuer, as.issuer);
    assert.equal(account?.flow, 'device');
    assert.equal(account?.tls, 'implicit');
    assert.equal(account?.port, 995);
    assert.equal(account?.ca, ca.caCertPath);
    assert.deepEqual(account?.scopes, ['pop3', 'offline_access']);
  });

  test('with every answer given as a flag, init asks nothing, even on a terminal', async (t) => {
    if (!requirePeer(t, 'tmux')) return;
    const configHome = join(home.dir, 'flags-config');
    await mkdir(configHome, { recursive: true });
    const w = 'flags';
    await tmux.start(
      w,
      [
        'init',
        '--account',
        'work',
        '--provider',
        'custom',
        '--user',
        'bob@example.test',
        '--client-id',
        'client-1',
        '--issuer',
        'http://127.0.0.1:9/',
        '--allow-insecure-http',
        '--flow',
        'browser',
        '--scopes',
        'pop3',
        '--host',
        'pop.example.test',
        '--tls',
        'starttls',
        '--port',
        '110',
        '--ca',
        ca.caCertPath,
        '--to',
        'mbox:~/mbox',
      ],
      { XDG_CONFIG_HOME: configHome },
    );
    const done = await tmux.waitFor(w, /EXIT=\d+/);
    assert.match(done, /EXIT=0/, done);
    assert.doesNotMatch(done, /\?|\]: /, 'nothing was asked');
    const account = parseConfig(
      await readFile(join(configHome, 'popgate', 'config.toml'), 'utf8'),
      'c',
    ).accounts.get('work');
    assert.equal(account?.allowInsecureHttp, true);
    assert.equal(account?.flow, 'browser');
    assert.equal(account?.tls, 'starttls');
    assert.equal(account?.ca, ca.caCertPath);
  });
});
