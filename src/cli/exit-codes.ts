import { isPopgateError } from '../errors.ts';

/** sysexits-style exit codes; documented in docs/cli.md and stable across versions. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 64,
  DATA: 65,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Maps an error to the exit code the CLI documents for it. */
export function exitCodeFor(error: unknown): ExitCode {
  if (!isPopgateError(error)) return EXIT.FAILURE;
  switch (error.code) {
    case 'ERR_CONFIG_USAGE':
      return EXIT.USAGE;
    case 'ERR_OAUTH_REAUTH_REQUIRED':
    case 'ERR_OAUTH_NO_TOKEN':
    case 'ERR_POP3_AUTH_FAILED':
    case 'ERR_OAUTH_ACCESS_DENIED':
      return EXIT.NOPERM;
    case 'ERR_CONFIG_INVALID':
    case 'ERR_CONFIG_UNKNOWN_KEY':
    case 'ERR_CONFIG_MISSING':
    case 'ERR_CONFIG_ACCOUNT_UNKNOWN':
    case 'ERR_OAUTH_INVALID_CLIENT':
    case 'ERR_OAUTH_INVALID_SCOPE':
    case 'ERR_OAUTH_INSECURE_ENDPOINT':
    case 'ERR_OAUTH_PROVIDER_UNKNOWN':
    case 'ERR_OAUTH_FLOW_UNSUPPORTED':
    case 'ERR_POP3_PLAINTEXT_REFUSED':
    case 'ERR_SERVER_CONFIG':
    case 'ERR_SERVER_TLS':
    case 'ERR_POP3_TLS_UNTRUSTED':
    case 'ERR_POP3_WRONG_TLS_MODE':
    case 'ERR_OAUTH_TLS_UNTRUSTED':
    case 'ERR_PROXY_CONFIG':
    case 'ERR_PROXY_PASSWORD_FILE':
    case 'ERR_PROXY_PASSWORD_UNKNOWN':
    case 'ERR_TOKEN_STORE_PERMISSIONS':
    case 'ERR_TOKEN_STORE_KEY':
      return EXIT.CONFIG;
    case 'ERR_FETCH_STATE':
    case 'ERR_TOKEN_STORE_TAMPERED':
    case 'ERR_POP3_SIZE_MISMATCH':
    case 'ERR_POP3_PROTOCOL':
      return EXIT.DATA;
    default:
      return EXIT.TEMPFAIL;
  }
}
