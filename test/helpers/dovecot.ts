// A real, unprivileged Dovecot 2.3 (Debian's dovecot-core + dovecot-pop3d) for interop tests and
// benchmarks: its own config, base_dir and state_dir under a temp dir, listening on 127.0.0.1 high
// ports (implicit TLS and STLS), Maildirs under the temp dir, `passdb { driver = oauth2 }`
// validating JWTs locally with a key this helper mints tokens with, and one password user.
// Facts behind the config: CONTRIBUTING.md ("Real peers: facts that shaped the tests").
//
// The master runs in the foreground under a tiny `sh` watchdog that reads our stdin: when this
// process dies, even by SIGKILL, the pipe closes and the watchdog terminates Dovecot.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { JWTPayload } from 'jose';
import { createDevCa } from '../../dev/certs.ts';
import { createSigningKey, type DevJwtAlgorithm, type DevSigningKey } from '../../dev/jwt-keys.ts';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { freePorts } from './ports.ts';

export interface StartDovecotOptions {
  /** OAuth users whose Maildirs are created at start. Default `['alice@example.test']`. */
  users?: readonly string[];
  /** The USER/PASS user (passwd-file passdb, PLAIN/LOGIN). Default bench@example.test, random password. */
  passwordUser?: { user: string; password?: string };
  /** The only `iss` accepted (Dovecot `issuers`). Default `https://issuer.popgate.test`. */
  issuer?: string;
  /** When set, Dovecot requires `aud` to contain it (`client_id`); minted tokens carry it. */
  clientId?: string;
  /** Scopes Dovecot requires (`scope`); minted tokens carry them. Default none. */
  scope?: string;
  /** Claim that must equal the SASL user (`username_attribute`). Default `email`. */
  usernameAttribute?: string;
  /** Signing algorithm of the default key. Default `RS256`. */
  alg?: DevJwtAlgorithm;
  /** `pop3_uidl_format`; Dovecot's default is `%08Xu%08Xv`. */
  uidlFormat?: string;
  /** `mail_max_userip_connections` for POP3. Default 100 (Dovecot's is 10). */
  maxUserIpConnections?: number;
  /** `default_process_limit` (and client limit x2). Default 200. */
  processLimit?: number;
  /** `auth_debug` and `mail_debug` into the log. */
  debug?: boolean;
  /** Appended verbatim to dovecot.conf. */
  extraConfig?: string;
}

export interface MintTokenOptions {
  /** Claims merged over the defaults (iss, sub, username claim, iat, exp, aud, scope); `undefined` removes one. */
  claims?: Record<string, unknown>;
  /** Seconds until `exp` (negative: already expired). Default 600. */
  expiresIn?: number;
  /** Sign with another key (e.g. a foreign key under the same kid for a bad signature). */
  signWith?: DevSigningKey;
  /** `typ` header. Default `JWT` (2.3.19 refuses `at+jwt`); `null` omits it. */
  typ?: string | null;
  /** `kid` header. Default the signing key's kid; `null` omits it (Dovecot then looks up `default`). */
  kid?: string | null;
}

export interface DovecotInstance {
  readonly host: '127.0.0.1';
  /** Implicit TLS (pop3s) port. */
  readonly popsPort: number;
  /** Plain port offering STLS. */
  readonly popPort: number;
  readonly caCertPath: string;
  readonly caCertPem: string;
  /** The temp dir holding everything (config, certs, keys, mail, run, log). */
  readonly dir: string;
  readonly logPath: string;
  readonly issuer: string;
  readonly clientId: string | undefined;
  readonly usernameAttribute: string;
  /** The key Dovecot trusts (placed at `keys/default/<ALG>/<kid>`). */
  readonly signingKey: DevSigningKey;
  readonly users: readonly string[];
  readonly passwordUser: { readonly user: string; readonly password: string };
  /** uid/gid that own the Maildirs and run the pop3 processes. */
  readonly mailUid: number;
  readonly mailGid: number;
  /** The user's Maildir (`…/mail/<user>/Maildir`), created with new/ cur/ tmp/ owned by mailUid. */
  maildirOf(user: string): Promise<string>;
  /** A JWT Dovecot accepts for `user` (unless options make it invalid). */
  mintToken(user: string, options?: MintTokenOptions): Promise<string>;
  /** Trusts one more key, at `keys/<azp>/<ALG>/<kid>` (`azp` default `default`). */
  addVerificationKey(key: DevSigningKey, azp?: string): Promise<void>;
  /** The Dovecot log so far (for diagnostics in failing tests). */
  readLog(): Promise<string>;
  /** Stops Dovecot and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const USER_RE = /^[A-Za-z0-9._+-]{1,64}(@[A-Za-z0-9.-]{1,190})?$/;
const DOVECOT = '/usr/sbin/dovecot';
const live = new Set<string>();
const masterPids = new WeakMap<ChildProcess, number>();
let exitHookInstalled = false;

function lookupAccount(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  const fields = line?.split(':');
  if (!fields || fields.length < 4) return undefined;
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

function groupName(gid: number): string | undefined {
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(gid));
  return line?.split(':')[0];
}

function checkUser(user: string): void {
  if (!USER_RE.test(user) || user.includes('..'))
    throw new Error(`unsafe test user name ${JSON.stringify(user)}`);
}

/** One greeting read: resolves true on `+OK`, false on anything else or a timeout. */
function greets(port: number, tls: boolean, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
      : netConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk: Buffer) => done(chunk.toString('latin1').startsWith('+OK')));
  });
}

function removeLiveDirs(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Dovecot itself dies with our stdin pipe; here only the files are left to remove.
  process.once('exit', removeLiveDirs);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    if (process.listenerCount(signal) > 0) continue; // someone else decides what the signal does
    process.once(signal, () => {
      removeLiveDirs();
      process.kill(process.pid, signal); // the default action, now that our listener is gone
    });
  }
}

function buildConfig(o: {
  dir: string;
  popPort: number;
  popsPort: number;
  mailUid: number;
  mailGid: number;
  root: boolean;
  internalUser: string;
  options: StartDovecotOptions;
}): string {
  const { dir, options } = o;
  const limit = options.processLimit ?? 200;
  const lines = [
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `instance_name = popgate-${randomBytes(4).toString('hex')}`,
    'protocols = pop3',
    'listen = 127.0.0.1',
    `log_path = ${dir}/dovecot.log`,
    `info_log_path = ${dir}/dovecot.log`,
    'ssl = yes',
    `ssl_cert = <${dir}/certs/dovecot.crt`,
    `ssl_key = <${dir}/certs/dovecot.key`,
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login oauthbearer xoauth2',
    'auth_failure_delay = 0',
    'auth_verbose = yes',
    `auth_debug = ${options.debug ? 'yes' : 'no'}`,
    `mail_debug = ${options.debug ? 'yes' : 'no'}`,
    `first_valid_uid = ${o.mailUid}`,
    `first_valid_gid = ${o.mailGid}`,
    'mail_location = maildir:~/Maildir',
    `default_process_limit = ${limit}`,
    `default_client_limit = ${limit * 2}`,
    ...(options.uidlFormat ? [`pop3_uidl_format = ${options.uidlFormat}`] : []),
    'protocol pop3 {',
    `  mail_max_userip_connections = ${options.maxUserIpConnections ?? 100}`,
    '}',
    'passdb {',
    '  driver = oauth2',
    '  mechanisms = oauthbearer xoauth2',
    `  args = ${dir}/oauth2.conf.ext`,
    '}',
    'passdb {',
    '  driver = passwd-file',
    '  mechanisms = plain login',
    `  args = scheme=PLAIN username_format=%u ${dir}/passwd`,
    '}',
    'userdb {',
    '  driver = static',
    `  args = uid=${o.mailUid} gid=${o.mailGid} home=${dir}/mail/%u`,
    '}',
    // The per-IP auth penalty would slow every later login from 127.0.0.1 after a refused one.
    'service anvil {',
    '  unix_listener anvil-auth-penalty {',
    '    mode = 0',
    '  }',
    ...(o.root ? [] : ['  chroot =']),
    '}',
    'service pop3-login {',
    '  inet_listener pop3 {',
    `    port = ${o.popPort}`,
    '  }',
    '  inet_listener pop3s {',
    `    port = ${o.popsPort}`,
    '    ssl = yes',
    '  }',
    ...(o.root ? [] : ['  chroot =']),
    '}',
  ];
  if (!o.root) {
    lines.push(`default_login_user = ${o.internalUser}`, `default_internal_user = ${o.internalUser}`);
    lines.push(`default_internal_group = ${groupName(o.mailGid) ?? o.internalUser}`);
  }
  if (options.extraConfig) lines.push(options.extraConfig);
  return `${lines.join('\n')}\n`;
}

/** Starts Dovecot; resolves once both ports greet with `+OK`. */
export async function startDovecot(options: StartDovecotOptions = {}): Promise<DovecotInstance> {
  const users = [...(options.users ?? ['alice@example.test'])];
  const pw = { user: options.passwordUser?.user ?? 'bench@example.test', password: '' };
  pw.password = options.passwordUser?.password ?? randomBytes(12).toString('hex');
  recordTestSecret(pw.password);
  for (const u of [...users, pw.user]) checkUser(u);
  if (!/^[\x21-\x7e]{1,128}$/.test(pw.password) || pw.password.includes(':')) {
    throw new Error('the test password must be printable ASCII without ":"');
  }
  const issuer = options.issuer ?? 'https://issuer.popgate.test';
  const usernameAttribute = options.usernameAttribute ?? 'email';
  for (const [name, value] of Object.entries({ issuer, usernameAttribute, ...options })) {
    if (typeof value === 'string' && /[\r\n]/.test(value) && name !== 'extraConfig') {
      throw new Error(`option ${name} must be one line`);
    }
  }

  const root = process.getuid?.() === 0;
  const me = userInfo();
  const internal = root ? (lookupAccount('dovecot') ?? { uid: 0, gid: 0 }) : { uid: me.uid, gid: me.gid };
  const mail = root ? (lookupAccount('mail') ?? { uid: 8, gid: 8 }) : { uid: me.uid, gid: me.gid };

  const dir = await mkdtemp(join(tmpdir(), 'popgate-dovecot-'));
  live.add(dir);
  installExitHook();
  let child: ChildProcess | undefined;
  try {
    await chmod(dir, 0o711); // the mail and auth users traverse it
    const ca = await createDevCa(join(dir, 'certs'));
    await ca.issue('dovecot');
    await mkdir(join(dir, 'mail'), { mode: 0o711 });
    await chown(join(dir, 'mail'), mail.uid, mail.gid);
    await mkdir(join(dir, 'keys'), { mode: 0o700 });
    await chown(join(dir, 'keys'), internal.uid, internal.gid);
    await writeFile(join(dir, 'passwd'), `${pw.user}:{PLAIN}${pw.password}::::::\n`, { mode: 0o600 });
    await chown(join(dir, 'passwd'), internal.uid, internal.gid);
    const oauthConf = [
      'introspection_mode = local',
      `local_validation_key_dict = fs:posix:prefix=${dir}/keys/`,
      `username_attribute = ${usernameAttribute}`,
      `issuers = ${issuer}`,
      ...(options.clientId ? [`client_id = ${options.clientId}`] : []),
      ...(options.scope ? [`scope = ${options.scope}`] : []),
    ];
    await writeFile(join(dir, 'oauth2.conf.ext'), `${oauthConf.join('\n')}\n`, { mode: 0o644 });

    async function addVerificationKey(key: DevSigningKey, azp = 'default'): Promise<void> {
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(azp)) throw new Error('azp must be a simple identifier');
      const keyDir = join(dir, 'keys', azp, key.alg);
      await mkdir(keyDir, { recursive: true, mode: 0o700 });
      for (const d of [join(dir, 'keys', azp), keyDir]) await chown(d, internal.uid, internal.gid);
      const path = join(keyDir, key.kid);
      await writeFile(path, key.verificationKey, { mode: 0o600 });
      await chown(path, internal.uid, internal.gid);
    }
    const signingKey = await createSigningKey({ alg: options.alg ?? 'RS256' });
    await addVerificationKey(signingKey);
    if (options.clientId && /^[A-Za-z0-9._-]{1,128}$/.test(options.clientId)) {
      await addVerificationKey(signingKey, options.clientId);
    }

    async function maildirOf(user: string): Promise<string> {
      checkUser(user);
      const home = join(dir, 'mail', user);
      const maildir = join(home, 'Maildir');
      for (const d of [home, maildir, join(maildir, 'new'), join(maildir, 'cur'), join(maildir, 'tmp')]) {
        await mkdir(d, { recursive: true, mode: 0o700 });
        await chown(d, mail.uid, mail.gid);
      }
      return maildir;
    }
    for (const u of [...users, pw.user]) await maildirOf(u);

    // Start, retrying with new ports if another process took one in the meantime.
    let ports: number[] = [];
    const masterLog = join(dir, 'master.log');
    for (let attempt = 1; ; attempt++) {
      ports = await freePorts(2);
      const config = buildConfig({
        dir,
        popPort: ports[0]!,
        popsPort: ports[1]!,
        mailUid: mail.uid,
        mailGid: mail.gid,
        root,
        internalUser: me.username,
        options,
      });
      await writeFile(join(dir, 'dovecot.conf'), config, { mode: 0o644 });
      const script =
        '"$1" -F -c "$2" </dev/null >>"$3" 2>&1 & pid=$!; echo "$pid"; ' +
        'trap \'kill -TERM "$pid" 2>/dev/null\' TERM; read -r _; kill -TERM "$pid" 2>/dev/null; wait "$pid"';
      const proc = spawn('/bin/sh', ['-c', script, 'sh', DOVECOT, join(dir, 'dovecot.conf'), masterLog], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      child = proc;
      let out = '';
      proc.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const pid = Number(out.split('\n')[0]);
        if (out.includes('\n') && pid > 0) masterPids.set(proc, pid);
      });
      let exited = false;
      proc.once('exit', () => {
        exited = true;
      });
      let ready = false;
      for (let i = 0; i < 100 && !exited && !ready; i++) {
        await new Promise((r) => setTimeout(r, i === 0 ? 50 : 100));
        ready =
          (await greets(ports[0]!, false, ca.caCertPem)) && (await greets(ports[1]!, true, ca.caCertPem));
      }
      if (ready) break;
      const log = `${await readFile(masterLog, 'utf8').catch(() => '')}${await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '')}`;
      await stopChild(proc);
      if (attempt < 3 && /Address already in use/.test(log)) continue;
      throw new Error(`Dovecot did not start (attempt ${attempt}):\n${log.slice(-4000)}`);
    }
    const running = child;
    running.unref();
    (running.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (running.stdout as unknown as { unref?: () => void } | null)?.unref?.();

    async function mintToken(user: string, mintOptions: MintTokenOptions = {}): Promise<string> {
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: issuer,
        sub: user,
        [usernameAttribute]: user,
        iat: now,
        exp: now + (mintOptions.expiresIn ?? 600),
        ...(options.clientId ? { aud: options.clientId } : {}),
        ...(options.scope ? { scope: options.scope } : {}),
      };
      for (const [k, v] of Object.entries(mintOptions.claims ?? {})) {
        if (v === undefined) delete claims[k];
        else claims[k] = v;
      }
      if (typeof claims.exp === 'number' && typeof claims.iat === 'number' && claims.exp < claims.iat) {
        claims.iat = claims.exp - 60; // Dovecot rejects exp < iat as "conflicting" before "expired"
      }
      const key = mintOptions.signWith ?? signingKey;
      const signOptions: { typ?: string | null; kid?: string | null } = {};
      if (mintOptions.typ !== undefined) signOptions.typ = mintOptions.typ;
      if (mintOptions.kid !== undefined) signOptions.kid = mintOptions.kid;
      return key.sign(claims as JWTPayload, signOptions);
    }

    let stopped = false;
    async function stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await stopChild(running);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      live.delete(dir);
    }

    return {
      host: '127.0.0.1',
      popPort: ports[0]!,
      popsPort: ports[1]!,
      caCertPath: ca.caCertPath,
      caCertPem: ca.caCertPem,
      dir,
      logPath: join(dir, 'dovecot.log'),
      issuer,
      clientId: options.clientId,
      usernameAttribute,
      signingKey,
      users,
      passwordUser: pw,
      mailUid: mail.uid,
      mailGid: mail.gid,
      maildirOf,
      mintToken,
      addVerificationKey,
      readLog: () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
      stop,
    };
  } catch (error) {
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    live.delete(dir);
    throw error;
  }
}

/** Ends the watchdog's stdin (it then SIGTERMs Dovecot and waits); SIGKILLs the master after 10 s. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdin?.end();
  const timer = setTimeout(() => {
    const masterPid = masterPids.get(proc);
    if (masterPid) {
      try {
        process.kill(masterPid, 'SIGKILL');
      } catch {}
    }
    proc.kill('SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * One Dovecot for a whole test file: started on first use (a file whose tests all skip starts
 * none) and stopped after the file's tests. Call it at the top level of the test file.
 */
export function sharedDovecot(options: StartDovecotOptions = {}): () => Promise<DovecotInstance> {
  let shared: Promise<DovecotInstance> | undefined;
  after(async () => {
    if (shared) await (await shared).stop();
  });
  return () => {
    shared ??= startDovecot(options);
    return shared;
  };
}
