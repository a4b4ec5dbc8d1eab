/**
 * Every `node:diagnostics_channel` name popgate publishes on, with who publishes and what the
 * payload holds: the one list `docs/diagnostics.md` is generated from (`npm run docs`;
 * test/unit/diagnostics-doc.test.ts keeps the two in step, as errors.md is kept in step with
 * errors.ts). Library code is silent (undici's pattern): it publishes here, and the CLI, the
 * server's metrics or an embedder subscribe. No payload ever holds a token, password or secret.
 */

/** One channel: its name, the module that publishes on it, and the payload's fields. */
export interface DiagnosticsChannelSpec {
  readonly name: `popgate:${string}`;
  readonly publisher: string;
  readonly payload: string;
  readonly description: string;
}

export const DIAGNOSTICS_CHANNELS = {
  pop3Connect: {
    name: 'popgate:pop3:connect',
    publisher: 'client (src/client/diagnostics.ts)',
    payload: "`{ host, port, tls, phase: 'tcp' | 'tls' | 'ready' }`",
    description: 'a client connection reached a stage: TCP up, TLS verified, greeting read',
  },
  pop3Command: {
    name: 'popgate:pop3:command',
    publisher: 'client (src/client/diagnostics.ts)',
    payload: '`{ host, port, command }`',
    description:
      'a command line the client sent, redacted where built (AUTH and PASS arguments are `[REDACTED]`)',
  },
  pop3Response: {
    name: 'popgate:pop3:response',
    publisher: 'client (src/client/diagnostics.ts)',
    payload: "`{ host, port, status: 'ok' | 'err' | 'continue', code?, text }`",
    description: 'a status line the client read; continuation payloads of SASL are `[REDACTED]`',
  },
  oauthRefresh: {
    name: 'popgate:oauth:refresh',
    publisher: 'token manager (src/oauth/token-manager.ts)',
    payload: "`{ account, phase: 'start' | 'success' | 'failure', code? }`",
    description: 'an access token refresh started, succeeded or failed (with the error code)',
  },
  auth: {
    name: 'popgate:auth',
    publisher: 'token validator (src/auth/events.ts)',
    payload:
      '`AuthEvent`: `validation`, `cache`, `jwks-fetch`, `discovery`, `introspection` (types in src/auth/events.ts)',
    description:
      "the server's token validation: results and latency, cache hits, JWKS, discovery and introspection requests",
  },
  serverAudit: {
    name: 'popgate:server:audit',
    publisher: 'server audit sink (src/observability/audit.ts)',
    payload: '`AuditEvent`: `login.ok`, `login.fail`, `logout` (types in src/observability/audit.ts)',
    description:
      "the server's audit trail: logins with identity and issuer, failures with a stable reason code, per-session counts",
  },
} as const satisfies Record<string, DiagnosticsChannelSpec>;

/** A channel name popgate publishes on. */
export type DiagnosticsChannelName = (typeof DIAGNOSTICS_CHANNELS)[keyof typeof DIAGNOSTICS_CHANNELS]['name'];
