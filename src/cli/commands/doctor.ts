// `popgate doctor [--account NAME]`: checks what a fetch needs — config, DNS and TCP, TLS
// (version, certificate, expiry), CAPA (SASL mechanisms, PIPELINING, UIDL), token health and
// scopes, file modes of state and token files, versions — and says what is wrong and how to fix it.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { isPopgateError } from '../../errors.ts';
import { probeServer } from '../../fetch/probe.ts';
import { accountStateDir } from '../../fetch/run-account.ts';
import { checkJournal } from '../../fetch/state.ts';
import { readCaFile } from '../../internal/ca-file.ts';
import { getPreset } from '../../oauth/providers/presets.ts';
import { VERSION } from '../../version.ts';
import type { RegisterCommand } from '../command.ts';
import { type AccountConfig, loadConfig, requireAccount } from '../config.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { openTokens, tokenDir, tokenProviderFor, tokenSourceOf } from '../tokens.ts';

type Level = 'ok' | 'warn' | 'FAIL';

/** Scopes a login asks for that the POP3 access token itself never lists. */
const NOT_IN_ACCESS_TOKENS = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access']);

/** The scopes POP3 needs that the stored token lacks (a warning that a new login can clear). */
export function missingPop3Scopes(wanted: readonly string[], granted: readonly string[]): string[] {
  return wanted.filter((s) => !granted.includes(s) && !NOT_IN_ACCESS_TOKENS.has(s));
}

interface Finding {
  readonly level: Level;
  readonly check: string;
  readonly detail: string;
  readonly fix?: string;
  /** Exit code this failure maps to. */
  readonly exit?: number;
}

const DAY = 86_400_000;

/** Claims of a JWT access token, decoded without verification (only to report expiry and scopes). */
function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    return JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function modeCheck(path: string, what: string, maxMode: number): Promise<Finding | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  const mode = info.mode & 0o777;
  if ((mode & ~maxMode) === 0)
    return { level: 'ok', check: 'files', detail: `${what} ${path} mode ${mode.toString(8)}` };
  return {
    level: 'FAIL',
    check: 'files',
    detail: `${what} ${path} is mode ${mode.toString(8)}: others can read it`,
    fix: `chmod ${maxMode.toString(8)} ${path}`,
    exit: EXIT.CONFIG,
  };
}

/** The UIDL journal, read as `popgate fetch` would read it (nothing is changed). */
async function checkFetchState(path: string): Promise<Finding> {
  try {
    const journal = await checkJournal(path);
    if (journal === undefined)
      return { level: 'ok', check: 'state', detail: 'no fetch state yet (first fetch)' };
    return {
      level: 'ok',
      check: 'state',
      detail: `${path}: ${journal.records} record(s)${journal.tornTail ? '; a torn last record will be dropped (an interrupted write)' : ''}`,
    };
  } catch (error) {
    return {
      level: 'FAIL',
      check: 'state',
      detail: isPopgateError(error) ? `${error.message} (${error.code})` : String(error),
      fix: 'fetch refuses this file too (exit 65): move it aside or restore it, as the message says',
      exit: EXIT.DATA,
    };
  }
}

async function checkToken(account: AccountConfig, ctx: CliContext): Promise<Finding[]> {
  const out: Finding[] = [];
  let token: string | undefined;
  try {
    if (tokenSourceOf(account) !== 'manager') {
      token = await (await tokenProviderFor(account, ctx))({ forceRefresh: false });
    } else {
      const { manager } = await openTokens(ctx, account);
      const status = await manager.status(account.name);
      const left = status.expiresAt === undefined ? undefined : status.expiresAt - Date.now();
      const level: Level =
        status.health === 'ok'
          ? 'ok'
          : status.health === 'expiring' || status.health === 'expired'
            ? status.hasRefreshToken
              ? 'ok'
              : 'warn'
            : 'FAIL';
      out.push({
        level,
        check: 'token',
        detail:
          `${status.health}${left !== undefined ? `, access token ${left > 0 ? `valid for ${Math.round(left / 60_000)} min` : 'expired'}` : ''}` +
          `${status.hasRefreshToken ? ', refresh token stored' : ', no refresh token'}; scopes: ${status.scopes.join(' ') || '(none recorded)'}` +
          (status.staleReason ? `; ${status.staleReason}` : ''),
        ...(level === 'FAIL' ? { fix: `popgate login --account ${account.name}`, exit: EXIT.NOPERM } : {}),
      });
      // Judged by what POP3 needs: an access token for the mailbox does not carry OpenID Connect
      // scopes (openid, profile, email) or offline_access, however often one logs in again.
      const wanted = account.scopes ?? getPreset(account.provider)?.scopes ?? [];
      const missing = missingPop3Scopes(wanted, status.scopes);
      if (status.health !== 'missing' && missing.length > 0) {
        out.push({
          level: 'warn',
          check: 'scopes',
          detail: `the token lacks ${missing.join(' ')}`,
          fix: `popgate login --account ${account.name}`,
        });
      }
      return out;
    }
  } catch (error) {
    return [
      {
        level: 'FAIL',
        check: 'token',
        detail: isPopgateError(error) ? `${error.message} (${error.code})` : String(error),
        fix: account.tokenCommand
          ? 'run the token_command by hand and check it prints one token'
          : `popgate login --account ${account.name}`,
        exit: EXIT.NOPERM,
      },
    ];
  }
  const claims = jwtClaims(token);
  const exp = typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined;
  const scopes =
    typeof claims?.scope === 'string'
      ? claims.scope
      : Array.isArray(claims?.scp)
        ? claims.scp.join(' ')
        : undefined;
  if (exp !== undefined && exp <= Date.now()) {
    out.push({
      level: 'FAIL',
      check: 'token',
      detail: 'the external token has expired',
      fix: 'refresh it with your token helper',
      exit: EXIT.NOPERM,
    });
  } else {
    const detail =
      exp === undefined
        ? 'an opaque token was obtained'
        : `a JWT valid for ${Math.round((exp - Date.now()) / 60_000)} min`;
    out.push({ level: 'ok', check: 'token', detail: `${detail}${scopes ? `; scopes: ${scopes}` : ''}` });
  }
  return out;
}

async function checkAccount(account: AccountConfig, ctx: CliContext): Promise<Finding[]> {
  const out: Finding[] = [];
  const preset = getPreset(account.provider);
  const host = account.host ?? preset?.pop3.host;
  const tls = account.tls ?? preset?.pop3.tls ?? 'implicit';
  const port =
    account.port ?? (preset && preset.pop3.tls === tls ? preset.pop3.port : tls === 'implicit' ? 995 : 110);
  if (!host) {
    return [
      {
        level: 'FAIL',
        check: 'config',
        detail: 'no POP3 host',
        fix: `add host = "..." to [accounts.${account.name}]`,
        exit: EXIT.CONFIG,
      },
    ];
  }
  let ca: string | undefined;
  if (account.ca) {
    try {
      ca = await readCaFile(account.ca, 'ca');
    } catch (error) {
      out.push({
        level: 'FAIL',
        check: 'config',
        detail: isPopgateError(error) ? error.message : `cannot read the CA file ${account.ca}`,
        fix: 'point "ca" at the CA certificate (PEM) that signed the server certificate',
        exit: EXIT.CONFIG,
      });
    }
  }
  const probe = await probeServer({ host, port, tls, ...(ca ? { ca } : {}) });
  out.push(
    probe.dns.ok
      ? { level: 'ok', check: 'dns', detail: `${host} -> ${probe.dns.value.join(', ')}` }
      : {
          level: 'FAIL',
          check: 'dns',
          detail: `${host} does not resolve (${probe.dns.error})`,
          fix: 'check the host name and your DNS',
          exit: EXIT.TEMPFAIL,
        },
  );
  if (probe.dns.ok) {
    out.push(
      probe.tcp.ok
        ? { level: 'ok', check: 'tcp', detail: `${host}:${port} connected in ${probe.tcp.value} ms` }
        : {
            level: 'FAIL',
            check: 'tcp',
            detail: `${host}:${port} unreachable (${probe.tcp.error})`,
            fix: 'check the port, a firewall, or the network',
            exit: EXIT.TEMPFAIL,
          },
    );
  }
  if (probe.tls.ok) {
    const t = probe.tls.value;
    const days = t.validTo ? Math.floor((t.validTo.getTime() - Date.now()) / DAY) : undefined;
    const weak = t.protocol !== 'TLSv1.3' && t.protocol !== 'TLSv1.2';
    const cert = `certificate ${t.subject ?? '?'} from ${t.issuer ?? '?'}${days !== undefined ? `, expires in ${days} days` : ''}`;
    if (!t.authorized) {
      out.push({
        level: 'FAIL',
        check: 'tls',
        detail: `${t.protocol}; ${cert}; NOT trusted: ${t.authorizationError}`,
        fix: 'if the server uses a private CA, set ca = "/path/to/ca.pem"; otherwise the certificate is wrong',
        exit: EXIT.CONFIG,
      });
    } else if (weak) {
      out.push({
        level: 'warn',
        check: 'tls',
        detail: `${t.protocol} is outdated; ${cert}`,
        fix: 'ask the provider to enable TLS 1.2 or 1.3',
      });
    } else if (days !== undefined && days < 14) {
      out.push({
        level: 'warn',
        check: 'tls',
        detail: `${t.protocol}; ${cert}: the certificate expires in under 14 days`,
        fix: 'nothing to do here unless it is your server: then renew the certificate before it expires',
      });
    } else {
      out.push({ level: 'ok', check: 'tls', detail: `${t.protocol}; ${cert}` });
    }
  } else if (probe.tcp.ok) {
    out.push({
      level: 'FAIL',
      check: 'tls',
      detail: `handshake failed (${probe.tls.error})`,
      fix: `check "tls" (implicit for port 995, starttls for 110)`,
      exit: EXIT.TEMPFAIL,
    });
  }
  if (probe.capa.ok) {
    const c = probe.capa.value;
    const oauth = c.sasl.filter((m) => m === 'XOAUTH2' || m === 'OAUTHBEARER');
    const wanted = account.mechanism ?? preset?.mechanism;
    const offered =
      `SASL ${c.sasl.join(' ') || '(none before login)'}; PIPELINING ${c.pipelining ? 'yes' : 'no'}; UIDL ${c.uidl ? 'yes' : 'no'}` +
      (c.loginDelay ? `; LOGIN-DELAY ${c.loginDelay.seconds}s` : '');
    if (wanted && c.sasl.length > 0 && !c.sasl.includes(wanted)) {
      out.push({
        level: 'FAIL',
        check: 'capa',
        detail: `${offered}: ${wanted} is not offered`,
        fix: `set mechanism = "${oauth[0] ?? 'XOAUTH2'}"`,
        exit: EXIT.CONFIG,
      });
    } else if (c.sasl.length > 0 && oauth.length === 0) {
      out.push({
        level: 'FAIL',
        check: 'capa',
        detail: `${offered}: no OAuth mechanism`,
        fix: 'the server does not accept OAuth2 over POP3; ask the provider',
        exit: EXIT.CONFIG,
      });
    } else {
      out.push({
        level: c.pipelining && c.uidl ? 'ok' : 'warn',
        check: 'capa',
        detail: offered,
        ...(!c.uidl
          ? { fix: 'without UIDL popgate falls back to Message-ID + size to recognise fetched mail' }
          : {}),
      });
    }
  } else if (probe.tls.ok) {
    out.push({ level: 'FAIL', check: 'capa', detail: probe.capa.error, exit: EXIT.TEMPFAIL });
  }
  out.push(...(await checkToken(account, ctx)));
  const stateDir = accountStateDir(ctx.paths.stateDir, account.name);
  out.push(await checkFetchState(join(stateDir, 'uidl.journal')));
  for (const f of [
    await modeCheck(stateDir, 'state directory', 0o700),
    await modeCheck(join(stateDir, 'uidl.journal'), 'UIDL state', 0o600),
    await modeCheck(tokenDir(ctx), 'token directory', 0o700),
    account.tokenFile ? await modeCheck(account.tokenFile, 'token_file', 0o600) : undefined,
    account.clientSecretFile
      ? await modeCheck(account.clientSecretFile, 'client_secret_file', 0o600)
      : undefined,
  ]) {
    if (f) out.push(f);
  }
  return out;
}

function print(ctx: CliContext, findings: readonly Finding[], indent: string): void {
  for (const f of findings) {
    ctx.stdout.write(`${indent}${f.check.padEnd(7)} ${f.level.padEnd(4)}  ${f.detail}\n`);
    if (f.fix && f.level !== 'ok') ctx.stdout.write(`${indent}${''.padEnd(13)}fix: ${f.fix}\n`);
  }
}

async function doctor(flags: { account?: string[] }, ctx: CliContext): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  const all: Finding[] = [];
  ctx.stdout.write(
    `popgate ${VERSION} doctor (Node ${process.version}, OpenSSL ${process.versions.openssl})\n`,
  );
  if (major < 20)
    all.push({
      level: 'FAIL',
      check: 'node',
      detail: `Node ${process.version} is too old`,
      fix: 'install Node 20 or newer',
      exit: EXIT.CONFIG,
    });
  let accounts: AccountConfig[] = [];
  try {
    const config = await loadConfig(ctx);
    accounts = flags.account?.length
      ? flags.account.map((n) => requireAccount(config, n))
      : [...config.accounts.values()];
    all.push({
      level: config.path ? 'ok' : 'warn',
      check: 'config',
      detail: config.path
        ? `${config.path}: ${config.accounts.size} account(s)`
        : `no config file at ${ctx.paths.configFile}`,
      ...(config.path ? {} : { fix: 'popgate init' }),
    });
    if (config.path) {
      const f = await modeCheck(config.path, 'config file', 0o755);
      if (f && f.level !== 'ok')
        all.push({ ...f, level: 'warn', detail: `${config.path} is writable by others` });
    }
  } catch (error) {
    all.push({
      level: 'FAIL',
      check: 'config',
      detail: isPopgateError(error) ? `${error.message} (${error.code})` : String(error),
      fix: `edit ${ctx.paths.configFile}`,
      exit: EXIT.CONFIG,
    });
  }
  print(ctx, all, '');
  for (const account of accounts) {
    ctx.stdout.write(`[${account.name}] ${account.user}\n`);
    const findings = await checkAccount(account, ctx);
    print(ctx, findings, '  ');
    all.push(...findings);
  }
  const problems = all.filter((f) => f.level === 'FAIL');
  const warnings = all.filter((f) => f.level === 'warn');
  ctx.stdout.write(
    problems.length === 0
      ? `no problems found${warnings.length ? ` (${warnings.length} warning(s))` : ''}\n`
      : `${problems.length} problem(s) found\n`,
  );
  for (const code of [EXIT.CONFIG, EXIT.NOPERM, EXIT.DATA, EXIT.TEMPFAIL]) {
    if (problems.some((p) => p.exit === code)) {
      ctx.exitCode = code;
      return;
    }
  }
  ctx.exitCode = problems.length > 0 ? EXIT.FAILURE : EXIT.OK;
}

export const registerDoctor: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('doctor')
    .description(
      'Check config, DNS, TCP, TLS, server capabilities, tokens and file modes; say what is wrong and how to fix it',
    )
    .option('--account <name...>', 'check only these accounts')
    .action(async (flags: { account?: string[] }) => {
      await doctor(flags, ctx);
    });
};
