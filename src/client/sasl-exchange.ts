/**
 * The AUTH exchange (RFC 5034) for OAUTHBEARER, XOAUTH2 and PLAIN: initial response inline when
 * `AUTH mech ir` fits in 255 octets, else two-step; the RFC 7628 §3.2.2 error challenge is
 * answered (%x01 for OAUTHBEARER, empty for XOAUTH2) and its JSON lands on the typed error.
 */
import { Pop3Error } from '../errors.ts';
import { serializeCommand, serializeSaslLine } from '../protocol/command.ts';
import { REDACTED } from '../protocol/redact.ts';
import type { Pop3Response } from '../protocol/response.ts';
import {
  errorChallengeAnswer,
  type OAuthErrorChallenge,
  parseOAuthErrorChallenge,
} from '../sasl/error-challenge.ts';
import type { SaslMechanism } from '../sasl/mechanisms.ts';
import type { Connection } from './connection.ts';
import { errorFromResponse } from './errors.ts';

/** RFC 2449 §4: a command line, CRLF included, is at most 255 octets. */
export const MAX_INLINE_AUTH = 255;

export interface SaslExchange {
  mechanism: SaslMechanism;
  /** The base64 initial response; it carries the credential. */
  initialResponse: string;
  /** The raw secrets (this token, and an earlier one on a retry), scrubbed from any server text. */
  secrets: readonly string[];
  /** Never inline: `AUTH mech`, then the response after the server's `+`. */
  twoStep?: boolean;
  signal?: AbortSignal | undefined;
  maxSaslResponse: number;
}

function sendRaw(conn: Connection, line: Buffer, logLine: string, signal: AbortSignal | undefined) {
  return conn.send({
    verb: 'AUTH',
    line,
    logLine,
    kind: 'raw',
    barrier: true,
    authenticating: true,
    signal,
  }) as Promise<Pop3Response>;
}

/** Runs one AUTH exchange; resolves on +OK, throws a typed Pop3Error otherwise. */
export async function runSaslExchange(conn: Connection, exchange: SaslExchange): Promise<void> {
  const { mechanism, initialResponse, signal } = exchange;
  for (const secret of exchange.secrets) conn.addSecret(secret);
  conn.addSecret(initialResponse);
  try {
    const inlineLength = `AUTH ${mechanism} ${initialResponse}\r\n`.length;
    let response: Pop3Response;
    if (inlineLength <= MAX_INLINE_AUTH && exchange.twoStep !== true) {
      response = await sendRaw(
        conn,
        serializeCommand('AUTH', [mechanism, initialResponse], MAX_INLINE_AUTH),
        `AUTH ${mechanism} ${REDACTED}`,
        signal,
      );
    } else {
      response = await sendRaw(conn, serializeCommand('AUTH', [mechanism]), `AUTH ${mechanism}`, signal);
      if (response.kind !== 'continue') return finish(response, undefined);
      response = await sendRaw(
        conn,
        serializeSaslLine(initialResponse, exchange.maxSaslResponse),
        REDACTED,
        signal,
      );
    }
    let saslError: OAuthErrorChallenge | undefined;
    if (response.kind === 'continue') {
      // RFC 7628 §3.2.2: a challenge after our credentials is the error report.
      if (mechanism === 'PLAIN') {
        response = await sendRaw(conn, serializeSaslLine('*'), '*', signal);
      } else {
        try {
          saslError = parseOAuthErrorChallenge(response.challenge);
        } catch {
          saslError = undefined;
        }
        response = await sendRaw(conn, serializeSaslLine(errorChallengeAnswer(mechanism)), REDACTED, signal);
        if (response.kind === 'continue') response = await sendRaw(conn, serializeSaslLine('*'), '*', signal);
      }
    }
    return finish(response, saslError);
  } finally {
    conn.clearSecrets();
  }
}

function finish(response: Pop3Response, saslError: OAuthErrorChallenge | undefined): void {
  if (response.kind === 'ok') return;
  if (response.kind === 'continue') {
    throw new Pop3Error(
      'ERR_POP3_PROTOCOL',
      'the server kept sending SASL challenges after the exchange ended',
    );
  }
  throw errorFromResponse('AUTH', response, {
    authenticating: true,
    ...(saslError ? { saslError: saslError as unknown as Readonly<Record<string, unknown>> } : {}),
  });
}
