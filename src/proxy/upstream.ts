/**
 * The upstream side of a proxy session: popgate's own client, connected with the account's
 * settings (TLS always verified), logged in with the account's access token, in TRANSACTION
 * state. And what the legacy client is told when that fails: a dead grant asks for a new login
 * (`[AUTH]`, the command to run), a transient failure of the identity provider or the upstream
 * is `[SYS/TEMP]` (tokens kept), and the upstream's own `[IN-USE]` and `[LOGIN-DELAY]` are passed on.
 */
import { Pop3Client } from '../client/pop3-client.ts';
import { isPopgateError, Pop3Error } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProxyAccount } from './options.ts';

/** What the legacy client is answered when the upstream login fails, and how it is counted. */
export interface UpstreamRefusal {
  /** The RFC 2449/3206 response code of the local `-ERR`. */
  readonly code: 'AUTH' | 'SYS/TEMP' | 'IN-USE' | 'LOGIN-DELAY';
  readonly text: string;
  /** The audit reason and the metrics result. */
  readonly reason: 'reauth-required' | 'upstream-auth' | 'upstream-temp' | 'in-use' | 'login-delay';
}

/** `host:port` of an account's upstream, for audit events and logs. */
export function upstreamLabel(account: ProxyAccount): string {
  const { host, port, tls } = account.upstream;
  return `${host}:${port ?? (tls === 'implicit' ? 995 : 110)}`;
}

/**
 * Connects and logs in upstream for `account`; resolves with the client in TRANSACTION state.
 * Throws what the token provider or the client throws; {@link refusalFor} turns it into an answer.
 */
export async function openUpstream(
  account: ProxyAccount,
  options: { logger: Logger; timeouts: { connectMs?: number; commandMs?: number } },
): Promise<Pop3Client> {
  const u = account.upstream;
  const client = new Pop3Client({
    host: u.host,
    ...(u.port !== undefined ? { port: u.port } : {}),
    tls: u.tls,
    ...(u.ca !== undefined ? { ca: u.ca } : {}),
    // Exchange Online's LIST sizes are estimates: relay the body whatever its length.
    sizeCheck: 'off',
    logger: options.logger,
    timeouts: {
      ...(options.timeouts.connectMs !== undefined ? { connect: options.timeouts.connectMs } : {}),
      ...(options.timeouts.commandMs !== undefined ? { command: options.timeouts.commandMs } : {}),
    },
  });
  client.on('close', () => {});
  try {
    const caps = await client.connect();
    const mechanism = u.mechanism ?? (caps.sasl.includes('OAUTHBEARER') ? 'OAUTHBEARER' : 'XOAUTH2');
    await client.authenticate({
      mechanism,
      user: u.user,
      token: account.token,
      ...(u.twoStep ? { twoStep: true } : {}),
    });
    return client;
  } catch (error) {
    client.close();
    throw error;
  }
}

/** The local answer for an upstream login failure (never with a token or the upstream's secrets). */
export function refusalFor(account: ProxyAccount, error: unknown): UpstreamRefusal {
  const name = account.name;
  if (isPopgateError(error, 'ERR_OAUTH_REAUTH_REQUIRED') || isPopgateError(error, 'ERR_OAUTH_NO_TOKEN')) {
    return {
      code: 'AUTH',
      text: `popgate: account ${name} needs a new login: run popgate login --account ${name}`,
      reason: 'reauth-required',
    };
  }
  if (error instanceof Pop3Error) {
    switch (error.code) {
      case 'ERR_POP3_IN_USE':
        return {
          code: 'IN-USE',
          text: `popgate: the mailbox of account ${name} is in use by another session; try again later`,
          reason: 'in-use',
        };
      case 'ERR_POP3_LOGIN_DELAY':
        return {
          code: 'LOGIN-DELAY',
          text: `popgate: the mail server of account ${name} asks to wait before logging in again`,
          reason: 'login-delay',
        };
      case 'ERR_POP3_AUTH_FAILED':
        return {
          code: 'AUTH',
          text: `popgate: the mail server refused the token of account ${name}; check that POP is enabled for the mailbox and the app may use it`,
          reason: 'upstream-auth',
        };
      default:
        break;
    }
  }
  return {
    code: 'SYS/TEMP',
    text: `popgate: account ${name} cannot log in upstream right now; try again later`,
    reason: 'upstream-temp',
  };
}
