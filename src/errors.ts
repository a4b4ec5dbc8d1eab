/**
 * Typed errors with stable codes. Every code is listed in {@link ERROR_CODES} with a one-line
 * meaning; `docs/errors.md` documents each one and a test keeps the two in step.
 *
 * Rules (docs/architecture.md, "Rules that are never bent"): messages say what to do next and never carry a
 * secret; `cause` is attached non-enumerable so a serializer that walks enumerable fields
 * cannot reach upstream bodies.
 */

export const ERROR_CODES = {
  // --- POP3 wire and client (ERR_POP3_*) ---
  ERR_POP3_CONNECT: 'TCP or TLS connection to the POP3 server could not be made',
  ERR_POP3_TLS: 'the TLS handshake failed (the network cut it, or the peer broke off)',
  ERR_POP3_TLS_UNTRUSTED:
    "the POP3 server's certificate did not verify (untrusted CA, wrong name, expired): set ca or fix the server",
  ERR_POP3_WRONG_TLS_MODE:
    'the port speaks another TLS mode than configured (implicit TLS against STLS, or the reverse)',
  ERR_POP3_TLS_REQUIRED: 'an operation would send a credential without verified TLS',
  ERR_POP3_STLS_INJECTION: 'bytes arrived after +OK to STLS before the TLS handshake (fail closed)',
  ERR_POP3_STLS_UNSUPPORTED: 'the server does not offer STLS',
  ERR_POP3_GREETING: 'the server greeting was missing or not +OK',
  ERR_POP3_TIMEOUT: 'a connect, greeting, idle or command timeout expired',
  ERR_POP3_ABORTED: 'the operation was cancelled through its AbortSignal',
  ERR_POP3_CLOSED: 'the connection closed while a command was pending',
  ERR_POP3_LINE_TOO_LONG: 'a response line exceeded the configured limit',
  ERR_POP3_RESPONSE_TOO_LARGE: 'a multi-line response exceeded the configured limit',
  ERR_POP3_MESSAGE_TOO_LARGE: 'a message exceeded the configured maximum size',
  ERR_POP3_SIZE_MISMATCH: 'a retrieved message did not have the size LIST announced',
  ERR_POP3_PROTOCOL: 'the server sent something that is not valid POP3',
  ERR_POP3_ERR_RESPONSE: 'the server answered -ERR',
  ERR_POP3_INVALID_ARGUMENT: 'a command argument contains CR, LF, NUL or is otherwise invalid',
  ERR_POP3_STATE: 'the command is not valid in the current session state',
  ERR_POP3_UNSUPPORTED: 'the server does not support a required capability',
  ERR_POP3_AUTH_FAILED: 'the server refused the credentials ([AUTH])',
  ERR_POP3_AUTH_TEMP: 'the server could not authenticate for a temporary reason ([SYS/TEMP])',
  ERR_POP3_IN_USE: 'the maildrop is locked by another session ([IN-USE])',
  ERR_POP3_LOGIN_DELAY: 'the server asks to wait before logging in again ([LOGIN-DELAY])',
  ERR_POP3_PLAINTEXT_REFUSED: 'plaintext was requested for a host that is not loopback',
  // --- SASL (ERR_SASL_*) ---
  ERR_SASL_MECHANISM: 'the SASL mechanism is unknown or not offered',
  ERR_SASL_MALFORMED: 'a SASL message could not be decoded',
  ERR_SASL_CANCELLED: 'the SASL exchange was cancelled with "*"',
  ERR_SASL_TOO_LARGE: 'a SASL response exceeded the configured cap',
  // --- OAuth client side (ERR_OAUTH_*) ---
  ERR_OAUTH_INSECURE_ENDPOINT:
    'an OAuth endpoint is not https (http is allowed only to loopback with an explicit flag)',
  ERR_OAUTH_DISCOVERY: 'authorization server metadata could not be fetched or is invalid',
  ERR_OAUTH_RESPONSE: 'a token or device response failed field-by-field checks',
  ERR_OAUTH_REAUTH_REQUIRED: 'the refresh token was rejected (invalid_grant): log in again',
  ERR_OAUTH_INVALID_CLIENT: 'the authorization server rejected the client credentials (invalid_client)',
  ERR_OAUTH_INVALID_SCOPE: 'the authorization server rejected the requested scope (invalid_scope)',
  ERR_OAUTH_ACCESS_DENIED: 'the user denied the authorization request',
  ERR_OAUTH_EXPIRED: 'the device code or authorization request expired before it was approved',
  ERR_OAUTH_STATE_MISMATCH: 'the state or iss of an authorization response did not match',
  ERR_OAUTH_TRANSIENT: 'a temporary failure talking to the authorization server (network, 5xx, 429)',
  ERR_OAUTH_TLS_UNTRUSTED:
    "the authorization server's certificate did not verify (untrusted CA, wrong name, expired): set ca or fix the server",
  ERR_OAUTH_FLOW_UNSUPPORTED: 'the provider does not support the requested flow',
  ERR_OAUTH_PROVIDER_UNKNOWN: 'no preset or discovery data for the named provider',
  ERR_OAUTH_NO_TOKEN: 'no token is stored for the account: log in first',
  ERR_OAUTH_LOCK_TIMEOUT: 'another process held the account refresh lock for too long',
  // --- Token store (ERR_TOKEN_STORE_*) ---
  ERR_TOKEN_STORE_PERMISSIONS: 'a token file or directory is readable by others',
  ERR_TOKEN_STORE_TAMPERED: 'a token file failed authentication (tampered, swapped or corrupt)',
  ERR_TOKEN_STORE_KEY: 'the encryption key could not be obtained or is wrong',
  ERR_TOKEN_STORE_IO: 'a token file could not be read or written',
  // --- Server-side token validation (ERR_AUTH_*) ---
  ERR_AUTH_INVALID_TOKEN: 'the access token is malformed, forged, expired or not yet valid',
  ERR_AUTH_AUDIENCE: 'the access token is for another audience',
  ERR_AUTH_ISSUER: 'the access token comes from an issuer that is not configured',
  ERR_AUTH_TYPE: 'the access token has the wrong typ header',
  ERR_AUTH_SCOPE: 'the access token lacks a required scope',
  ERR_AUTH_USER_MISMATCH: 'the SASL user does not match the token user claim',
  ERR_AUTH_INACTIVE: 'introspection says the token is not active',
  ERR_AUTH_UNAVAILABLE: 'the identity provider (JWKS or introspection) could not be reached',
  // --- Maildrop store (ERR_STORE_*) ---
  ERR_STORE_LOCKED: 'the maildrop is locked by another session',
  ERR_STORE_NOT_FOUND: 'no maildrop exists for the user',
  ERR_STORE_IO: 'the maildrop could not be read or written',
  ERR_STORE_NO_SUCH_MESSAGE: 'the message does not exist or was removed',
  ERR_STORE_FULL: 'the disk is full or over quota',
  ERR_STORE_INVALID_USER: 'a maildrop user name is empty, too long or contains unsafe characters',
  ERR_STORE_INVALID_MESSAGE: 'a message to deliver is empty or larger than the configured maximum',
  ERR_STORE_CORRUPT: 'a maildrop state file (popgate-uidlist) is malformed',
  ERR_STORE_UNSAFE_FILE:
    'a Maildir entry is a symbolic link, FIFO, device or other non-regular file, or a message file owned by another user; it is not read',
  // --- Fetcher (ERR_FETCH_*) ---
  ERR_FETCH_DELIVERY: 'a message could not be delivered to its destination',
  ERR_FETCH_STATE: 'the UIDL state file is corrupt or unreadable',
  ERR_FETCH_LOCKED: 'another popgate fetch holds the account lock',
  // --- Server (ERR_SERVER_*) ---
  ERR_SERVER_CONFIG: 'the server configuration is invalid',
  ERR_SERVER_TLS: 'the server TLS certificate or key could not be loaded',
  // --- Proxy (ERR_PROXY_*) ---
  ERR_PROXY_CONFIG: 'the proxy configuration is invalid (e.g. a non-loopback listener without local TLS)',
  ERR_PROXY_PASSWORD_FILE: 'the app-password file could not be read or written, or is not private',
  ERR_PROXY_PASSWORD_UNKNOWN: 'no app password with that id or label exists for the account',
  // --- Configuration and CLI (ERR_CONFIG_*) ---
  ERR_CONFIG_USAGE:
    'the command line asks for something the command does not do (a flag or combination it refuses)',
  ERR_CONFIG_INVALID: 'a configuration value is invalid',
  ERR_CONFIG_UNKNOWN_KEY: 'the configuration names a key that does not exist',
  ERR_CONFIG_MISSING: 'a required configuration value is missing',
  ERR_CONFIG_ACCOUNT_UNKNOWN: 'no account of that name is configured',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Fields an error may carry; all are safe to log (no secrets). */
export interface PopgateErrorOptions {
  cause?: unknown;
}

/** Base of every popgate error: a stable `code` and a message that says what to do next. */
export class PopgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: PopgateErrorOptions = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    if (options.cause !== undefined) {
      // Non-enumerable: loggers that serialise own enumerable fields never see upstream detail.
      Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
    }
  }
}

/** POP3 response codes of RFC 2449/3206 surfaced on errors (`[AUTH]`, `[SYS/TEMP]`, ...). */
export type Pop3ResponseCode = string;

export interface Pop3ErrorOptions extends PopgateErrorOptions {
  /** The bracketed response code, e.g. `AUTH`, `SYS/TEMP`, `IN-USE`, `LOGIN-DELAY`. */
  responseCode?: Pop3ResponseCode;
  /** The server's human text after `-ERR` (already capped, never contains credentials). */
  serverText?: string;
  /** For SASL failures: the decoded JSON error challenge (status, scope, openid-configuration). */
  saslError?: Readonly<Record<string, unknown>>;
}

/** Errors from talking POP3 (client or server side). */
export class Pop3Error extends PopgateError {
  readonly responseCode: Pop3ResponseCode | undefined;
  readonly serverText: string | undefined;
  readonly saslError: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: Pop3ErrorOptions = {}) {
    super(code, message, options);
    this.responseCode = options.responseCode;
    this.serverText = options.serverText;
    this.saslError = options.saslError;
  }
}

/** SASL encode/decode errors. */
export class SaslError extends PopgateError {}

export interface OAuthErrorOptions extends PopgateErrorOptions {
  /** Account name the error concerns (never a token). */
  account?: string;
  /** OAuth `error` value from the authorization server, e.g. `invalid_grant`. */
  oauthError?: string;
  /** HTTP status when the error came from an HTTP answer. */
  status?: number;
  /** Seconds the server asked us to wait (Retry-After, slow_down). */
  retryAfter?: number;
}

/** Errors of the OAuth client side: discovery, flows, token manager. */
export class OAuthError extends PopgateError {
  readonly account: string | undefined;
  readonly oauthError: string | undefined;
  readonly status: number | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: OAuthErrorOptions = {}) {
    super(code, message, options);
    this.account = options.account;
    this.oauthError = options.oauthError;
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }
}

/** Errors of the encrypted token store. */
export class TokenStoreError extends PopgateError {}

/** Server-side token validation errors. `temporary` marks IdP outages (answer [SYS/TEMP]). */
export class TokenValidationError extends PopgateError {
  readonly temporary: boolean;
  /** Scope the resource needs, for the RFC 7628 error challenge. */
  readonly requiredScope: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: PopgateErrorOptions & { temporary?: boolean; requiredScope?: string } = {},
  ) {
    super(code, message, options);
    this.temporary = options.temporary ?? code === 'ERR_AUTH_UNAVAILABLE';
    this.requiredScope = options.requiredScope;
  }
}

/** Maildrop store errors (server side). */
export class StoreError extends PopgateError {}

/** Fetcher errors (delivery, state, locks). */
export class FetchError extends PopgateError {}

/** Configuration errors: invalid, unknown or missing keys. */
export class ConfigError extends PopgateError {
  readonly key: string | undefined;

  constructor(code: ErrorCode, message: string, options: PopgateErrorOptions & { key?: string } = {}) {
    super(code, message, options);
    this.key = options.key;
  }
}

/** True when `value` is a popgate error, optionally with one of the given codes. */
export function isPopgateError(value: unknown, ...codes: ErrorCode[]): value is PopgateError {
  return value instanceof PopgateError && (codes.length === 0 || codes.includes(value.code));
}
