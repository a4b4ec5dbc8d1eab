/**
 * The two logins of the AUTHORIZATION state: SASL (RFC 5034) with XOAUTH2, OAUTHBEARER
 * (RFC 7628) or PLAIN, with one retry on a fresh token after an `[AUTH]` refusal, and USER/PASS
 * (RFC 1939 §7). Apart from Pop3Client so that the credential handling (when a password may be
 * sent, which secrets are scrubbed from server text) reads in one place. The client checks its
 * state and TLS before calling these, and enters TRANSACTION after.
 */
import { isPopgateError, Pop3Error, SaslError } from '../errors.ts';
import type { Pop3Capabilities } from '../protocol/capabilities.ts';
import { serializeCommand } from '../protocol/command.ts';
import { REDACTED } from '../protocol/redact.ts';
import { toSaslMechanism } from '../sasl/mechanisms.ts';
import { encodeOAuthBearer } from '../sasl/oauthbearer.ts';
import { encodePlain } from '../sasl/plain.ts';
import { encodeXOAuth2 } from '../sasl/xoauth2.ts';
import type { Connection } from './connection.ts';
import type { ResolvedClientOptions } from './options.ts';
import { runSaslExchange } from './sasl-exchange.ts';

/** Returns an access token; `forceRefresh` asks for a new one after the server refused the last. */
export type TokenProvider = (options: { forceRefresh: boolean }) => Promise<string>;

export interface AuthenticateOptions {
  mechanism: 'XOAUTH2' | 'OAUTHBEARER' | 'PLAIN';
  /** The mailbox user (XOAUTH2 `user=`, OAUTHBEARER authzid `a=`, PLAIN authcid). */
  user: string;
  /** Access token (or, for PLAIN only, a password) as a string or an async provider. */
  token: string | TokenProvider;
  /**
   * Always send the initial response on its own line after `AUTH mech` and the server's `+`
   * (RFC 5034 §4 "two-step"), even when it would fit on the command line. Exchange Online
   * documents POP3 XOAUTH2 only in this form. Default: inline when it fits in 255 octets.
   */
  twoStep?: boolean;
  signal?: AbortSignal | undefined;
}

/** The SASL login behind Pop3Client.authenticate; `caps` is the CAPA read before it. */
export async function saslLogin(
  conn: Connection,
  settings: ResolvedClientOptions,
  caps: Pop3Capabilities | undefined,
  options: AuthenticateOptions,
): Promise<void> {
  const mechanism = toSaslMechanism(options.mechanism);
  if (mechanism === 'PLAIN' && !settings.allowPasswordLogin) {
    // architecture.md practices 1-2: popgate never sends a mail password unless asked to in so many words.
    throw new Pop3Error(
      'ERR_POP3_INVALID_ARGUMENT',
      'SASL PLAIN sends a password, which is disabled; pass allowPasswordLogin: true to enable it',
    );
  }
  const offered = caps?.sasl ?? [];
  if (offered.length > 0 && !offered.includes(mechanism)) {
    throw new SaslError(
      'ERR_SASL_MECHANISM',
      `the server does not offer SASL ${mechanism}; it offers ${offered.join(', ')}`,
    );
  }
  const provider = typeof options.token === 'function' ? options.token : undefined;
  const attempt = async (token: string, earlier?: string) => {
    const initialResponse =
      mechanism === 'XOAUTH2'
        ? encodeXOAuth2({ user: options.user, token })
        : mechanism === 'OAUTHBEARER'
          ? encodeOAuthBearer({
              user: options.user,
              token,
              host: settings.servername ?? settings.host,
              port: settings.port,
            })
          : encodePlain({ user: options.user, password: token });
    await runSaslExchange(conn, {
      mechanism,
      initialResponse,
      secrets: earlier === undefined ? [token] : [token, earlier],
      twoStep: options.twoStep === true,
      signal: options.signal,
      maxSaslResponse: settings.limits.maxSaslResponse,
    });
  };
  const first = provider ? await provider({ forceRefresh: false }) : (options.token as string);
  try {
    await attempt(first);
  } catch (err) {
    const refusedCredentials =
      isPopgateError(err, 'ERR_POP3_AUTH_FAILED') &&
      ((err as Pop3Error).responseCode === 'AUTH' || (err as Pop3Error).saslError !== undefined);
    if (!provider || !refusedCredentials || conn.closed) throw err;
    settings.logger.info({ mechanism }, 'pop3 token refused; retrying once with a fresh token');
    await attempt(await provider({ forceRefresh: true }), first);
  }
}

/** USER/PASS behind Pop3Client.loginWithPassword; the password is scrubbed from server text. */
export async function passwordLogin(
  conn: Connection,
  options: { user: string; password: string; signal?: AbortSignal },
): Promise<void> {
  const base = { kind: 'status' as const, barrier: true, authenticating: true, signal: options.signal };
  conn.addSecret(options.password);
  try {
    await conn.send({
      ...base,
      verb: 'USER',
      line: serializeCommand('USER', [options.user]),
      logLine: 'USER',
    });
    await conn.send({
      ...base,
      verb: 'PASS',
      line: serializeCommand('PASS', [options.password]),
      logLine: `PASS ${REDACTED}`,
    });
  } finally {
    conn.clearSecrets();
  }
}
