/**
 * The session's login and UPDATE steps, shared by AUTH and PASS: failed-login accounting with
 * growing delays (never for identity-provider outages), LOGIN-DELAY, per-user connection
 * limits, opening the maildrop (`[IN-USE]` when locked), the token-bounded deadline, and the
 * atomic commit of deletions.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isPopgateError } from '../errors.ts';
import { capForAudit } from '../observability/audit.ts';
import type { LoginFailure, LoginRequest, Transaction } from './context.ts';
import type { LoginHost } from './login-host.ts';
import { ReadAhead } from './read-ahead.ts';

/**
 * Records a failed login: audit, metrics, and (unless temporary) the per-session count and the
 * per-IP/per-user delay, which it waits out before returning.
 */
export async function recordLoginFailure(session: LoginHost, failure: LoginFailure): Promise<void> {
  const { shared } = session;
  const user = capForAudit(failure.user);
  shared.metrics?.logins.inc({
    result: failure.temporary ? 'temp' : 'fail',
    reason: failure.reason,
    mechanism: failure.mechanism,
  });
  shared.audit?.emit({
    event: 'login.fail',
    session: session.id,
    remoteAddress: session.remoteAddress,
    mechanism: failure.mechanism,
    user,
    reason: failure.reason,
    temporary: failure.temporary,
    issuer: failure.issuer,
  });
  if (failure.temporary) return;
  session.stats.failedLogins += 1;
  shared.throttle.recordFailure(session.remoteAddress, user);
  const delay = shared.throttle.delayMs(session.remoteAddress, user);
  if (delay > 0) await sleep(delay, undefined, { ref: false });
}

/**
 * Opens the maildrop for `request.user` and answers `+OK`; on refusal answers the right `-ERR`
 * and returns undefined. `deadline` is when the session must end (token `exp` + grace).
 */
export async function enterTransaction(
  session: LoginHost,
  request: LoginRequest,
): Promise<{ transaction: Transaction; deadline: number | undefined } | undefined> {
  const { shared } = session;
  const { options } = shared;
  const now = shared.now();
  const fail = (reason: string, temporary: boolean) =>
    recordLoginFailure(session, {
      user: request.user,
      reason,
      mechanism: request.mechanism,
      temporary,
      issuer: request.token?.issuer,
    });

  if (options.loginDelaySeconds !== undefined && options.loginDelaySeconds > 0) {
    const last = shared.lastLogin.get(request.user);
    if (last !== undefined && now - last < options.loginDelaySeconds * 1000) {
      await fail('ERR_POP3_LOGIN_DELAY', true);
      session.err(`Wait ${options.loginDelaySeconds} seconds between logins.`, 'LOGIN-DELAY');
      return undefined;
    }
  }
  const expiresAt = request.token?.expiresAt?.getTime();
  if (expiresAt !== undefined && expiresAt + options.limits.tokenExpiryGraceMs <= now) {
    await fail('ERR_AUTH_INVALID_TOKEN', false);
    session.err('The access token has expired; obtain a fresh one and log in again.', 'AUTH');
    return undefined;
  }
  if (!shared.perUser.acquire(request.user)) {
    shared.metrics?.connectionsRefused.inc({ limit: 'user' });
    await fail('ERR_POP3_IN_USE', true);
    session.err('Too many sessions for this user; close one and try again.', 'IN-USE');
    return undefined;
  }
  let maildrop: Transaction['maildrop'];
  try {
    maildrop = await options.store.open(request.user);
  } catch (error) {
    shared.perUser.release(request.user);
    if (isPopgateError(error, 'ERR_STORE_LOCKED')) {
      await fail('ERR_STORE_LOCKED', true);
      session.err('The maildrop is in use by another session; try again later.', 'IN-USE');
    } else {
      const code = isPopgateError(error) ? error.code : 'ERR_STORE_IO';
      shared.logger.error({ session: session.id, code }, 'maildrop could not be opened');
      await fail(code, true);
      session.err('The maildrop cannot be opened right now; try again later.', 'SYS/TEMP');
    }
    return undefined;
  }
  if (session.closing) {
    // The client went away while the maildrop was opening.
    shared.perUser.release(request.user);
    await maildrop.release().catch(() => {});
    return undefined;
  }
  shared.throttle.recordSuccess(request.user);
  if (options.loginDelaySeconds !== undefined) shared.lastLogin.set(request.user, now);
  const token = request.token;
  shared.metrics?.logins.inc({ result: 'ok', reason: 'ok', mechanism: request.mechanism });
  shared.audit?.emit({
    event: 'login.ok',
    session: session.id,
    remoteAddress: session.remoteAddress,
    mechanism: request.mechanism,
    user: request.user,
    issuer: token?.issuer,
    clientId: token?.clientId,
    subject: token?.subject,
    method: token?.method ?? 'password',
  });
  const transaction: Transaction = {
    user: request.user,
    maildrop,
    token,
    canDelete: token === undefined ? true : token.rights.delete,
    deleted: new Set(),
    readAhead: new ReadAhead(maildrop),
  };
  const total = maildrop.messages.reduce((sum, m) => sum + m.size, 0);
  session.ok(`Logged in, ${maildrop.messages.length} messages (${total} octets).`);
  const deadline = expiresAt === undefined ? undefined : expiresAt + options.limits.tokenExpiryGraceMs;
  return { transaction, deadline };
}

/**
 * The UPDATE state (RFC 1939 §6): commits the marked deletions in one atomic store call.
 * Returns the number deleted, or undefined after answering `-ERR [SYS/TEMP]` (nothing deleted).
 */
export async function commitUpdate(session: LoginHost, tx: Transaction): Promise<number | undefined> {
  const { shared } = session;
  tx.readAhead.clear();
  const deleted = [...tx.deleted].sort((a, b) => a - b);
  try {
    await tx.maildrop.commit(deleted);
  } catch (error) {
    shared.logger.error(
      { session: session.id, code: isPopgateError(error) ? error.code : undefined },
      'UPDATE failed; nothing was deleted',
    );
    session.err('Some deleted messages could not be removed; none were. Try again.', 'SYS/TEMP');
    return undefined;
  }
  shared.metrics?.messagesDeleted.inc(deleted.length);
  return deleted.length;
}
