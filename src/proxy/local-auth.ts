/**
 * The proxy's local login (AUTHORIZATION state): USER/PASS (RFC 1939 §7) and SASL PLAIN
 * (RFC 4616 over RFC 5034: inline and two-step, `*` cancels), only where credentials may be
 * sent. The login name picks the account; the password must be one of the account's app
 * passwords. A wrong one is answered `-ERR [AUTH]` after a growing delay per client address and
 * per account (LoginThrottle), counted, audited, and never reaches the token store. Then the
 * upstream login: `+OK` only once the upstream said `+OK`.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPopgateError } from '../errors.ts';
import { capForAudit } from '../observability/audit.ts';
import { decodePlain } from '../sasl/plain.ts';
import type { ProxyContext } from './context.ts';
import { openUpstream, refusalFor, upstreamLabel } from './upstream.ts';

type Mechanism = 'USER' | 'PLAIN';

const NOT_SECURE = 'popgate: log in over TLS: use STLS first, or connect to the pop3s port';
const WRONG = 'popgate: wrong login name or app password';

/** USER name: remembered for PASS; the answer never tells whether the name exists. */
export function userCommand(ctx: ProxyContext, name: string): void {
  if (!ctx.credentialsAllowed) {
    ctx.err(NOT_SECURE, 'AUTH');
    return;
  }
  ctx.pendingUser = name;
  ctx.ok('send the app password with PASS');
}

/** PASS password (the whole rest of the line). */
export async function passCommand(ctx: ProxyContext, password: string): Promise<void> {
  const user = ctx.pendingUser;
  ctx.pendingUser = undefined;
  if (!ctx.credentialsAllowed) {
    ctx.err(NOT_SECURE, 'AUTH');
    return;
  }
  if (user === undefined) {
    ctx.err('USER first');
    return;
  }
  await login(ctx, user, password, 'USER');
}

/** AUTH [PLAIN [initial-response]]; without arguments, the mechanisms offered. */
export async function authCommand(ctx: ProxyContext, args: readonly string[]): Promise<void> {
  const name = args[0];
  if (name === undefined) {
    ctx.multiline('Supported mechanisms follow', ctx.credentialsAllowed ? ['PLAIN'] : []);
    return;
  }
  if (!ctx.credentialsAllowed) {
    ctx.err(NOT_SECURE, 'AUTH');
    return;
  }
  if (name.toUpperCase() !== 'PLAIN') {
    ctx.err('Unsupported authentication mechanism; this proxy offers PLAIN');
    return;
  }
  let response = args[1];
  if (response === undefined) {
    ctx.continuation('');
    response = await ctx.readResponse();
    if (response === undefined) return;
  }
  if (response === '*') {
    ctx.err('Authentication cancelled');
    return;
  }
  let credentials: { authzid: string; user: string; password: string };
  try {
    credentials = decodePlain(response === '=' ? '' : response, ctx.shared.options.limits.maxSaslResponse);
  } catch {
    await failed(ctx, 'PLAIN', undefined, undefined, 'malformed', false);
    ctx.err('Invalid SASL PLAIN response', 'AUTH');
    return;
  }
  // An authorization identity other than the login name would mean "act as someone else".
  if (credentials.authzid !== '' && credentials.authzid.toLowerCase() !== credentials.user.toLowerCase()) {
    await failed(ctx, 'PLAIN', credentials.user, undefined, 'malformed', false);
    ctx.err('popgate: a PLAIN authorization identity is not supported; leave it empty', 'AUTH');
    return;
  }
  await login(ctx, credentials.user, credentials.password, 'PLAIN');
}

async function login(
  ctx: ProxyContext,
  localUser: string,
  password: string,
  mechanism: Mechanism,
): Promise<void> {
  const { shared } = ctx;
  const account = shared.options.accounts.get(localUser.toLowerCase());
  let verified: { id: string; label: string } | undefined;
  try {
    // An unknown login name still costs one password check: the time taken tells nothing.
    verified = await shared.options.checkPassword(account?.name ?? '\0', password);
  } catch (error) {
    shared.logger.error(
      { session: ctx.id, code: isPopgateError(error) ? error.code : undefined },
      'the app-password file cannot be read',
    );
    await failed(ctx, mechanism, localUser, account?.name, 'password-file', true);
    ctx.err('popgate: the proxy cannot check passwords right now; try again later', 'SYS/TEMP');
    return;
  }
  if (account === undefined || verified === undefined) {
    await failed(ctx, mechanism, localUser, account?.name, account ? 'bad-password' : 'unknown-user', false);
    ctx.err(WRONG, 'AUTH');
    return;
  }
  const upstream = upstreamLabel(account);
  if (!shared.acquireAccount(account.name)) {
    shared.metrics?.connectionsRefused.inc({ limit: 'account' });
    await failed(ctx, mechanism, localUser, account.name, 'account-limit', true, upstream);
    ctx.err(
      `popgate: account ${account.name} has the most upstream sessions allowed open (${shared.options.limits.maxConnectionsPerAccount}); close one and try again`,
      'IN-USE',
    );
    return;
  }
  const started = performance.now();
  let client: Awaited<ReturnType<typeof openUpstream>>;
  try {
    client = await openUpstream(account, {
      logger: shared.logger.child?.({ session: ctx.id, account: account.name }) ?? shared.logger,
      timeouts: shared.options.upstreamTimeouts,
    });
  } catch (error) {
    shared.releaseAccount(account.name);
    const refusal = refusalFor(account, error);
    shared.metrics?.upstreamLogins.inc({ result: metricResult(refusal.reason) });
    shared.logger.warn(
      {
        session: ctx.id,
        account: account.name,
        upstream,
        code: isPopgateError(error) ? error.code : undefined,
      },
      'upstream login failed',
    );
    // Not the client's fault: no throttling, no failed-login count.
    await failed(ctx, mechanism, localUser, account.name, refusal.reason, true, upstream);
    ctx.err(refusal.text, refusal.code);
    return;
  }
  shared.metrics?.upstreamLogins.inc({ result: 'ok' });
  shared.metrics?.upstreamLoginSeconds.observe((performance.now() - started) / 1000);
  if (ctx.closing) {
    // The client went away while the upstream login ran.
    client.close();
    shared.releaseAccount(account.name);
    return;
  }
  shared.throttle.recordSuccess(account.name);
  shared.metrics?.logins.inc({ result: 'ok', mechanism });
  shared.audit?.emit({
    event: 'proxy.login.ok',
    session: ctx.id,
    remoteAddress: ctx.remoteAddress,
    mechanism,
    localUser: capForAudit(localUser)!,
    account: account.name,
    passwordId: verified.id,
    passwordLabel: verified.label,
    upstream,
  });
  ctx.enterTransaction(account, client, localUser);
  ctx.ok(`popgate: logged in to account ${account.name}`);
}

function metricResult(reason: string): string {
  switch (reason) {
    case 'reauth-required':
      return 'reauth';
    case 'upstream-auth':
      return 'auth';
    case 'in-use':
      return 'in-use';
    case 'login-delay':
      return 'login-delay';
    default:
      return 'temp';
  }
}

/**
 * Records a failed login: audit and metrics, and, when the client is at fault, the session's
 * count and the per-address/per-account delay, waited out before returning.
 */
async function failed(
  ctx: ProxyContext,
  mechanism: Mechanism,
  localUser: string | undefined,
  account: string | undefined,
  reason: string,
  temporary: boolean,
  upstream?: string,
): Promise<void> {
  const { shared } = ctx;
  let delayMs = 0;
  if (!temporary) {
    ctx.stats.failedLogins += 1;
    // Keyed by account when the name is known, else by the name given (capped).
    const key = account ?? capForAudit(localUser?.toLowerCase());
    shared.throttle.recordFailure(ctx.remoteAddress, key);
    delayMs = shared.throttle.delayMs(ctx.remoteAddress, key);
  }
  shared.metrics?.logins.inc({
    result: reason === 'reauth-required' ? 'reauth' : temporary ? 'temp' : 'fail',
    mechanism,
  });
  shared.audit?.emit({
    event: 'proxy.login.fail',
    session: ctx.id,
    remoteAddress: ctx.remoteAddress,
    mechanism,
    localUser: capForAudit(localUser),
    account,
    reason,
    temporary,
    delayMs,
    upstream,
  });
  if (delayMs > 0) await sleep(delayMs, undefined, { ref: false });
}
