/** Maps `-ERR` answers to typed errors, response codes surfaced as fields (RFC 2449, RFC 3206). */
import { type ErrorCode, Pop3Error } from '../errors.ts';
import { classifyResponseCode, type Pop3StatusResponse } from '../protocol/response.ts';

/** The error for a `-ERR` answer to `verb`. During authentication, no code means [AUTH]. */
export function errorFromResponse(
  verb: string,
  response: Pop3StatusResponse,
  options: { authenticating?: boolean; saslError?: Readonly<Record<string, unknown>> } = {},
): Pop3Error {
  const known = classifyResponseCode(response.code);
  let code: ErrorCode = 'ERR_POP3_ERR_RESPONSE';
  let hint = 'see serverText';
  switch (known) {
    case 'AUTH':
      code = 'ERR_POP3_AUTH_FAILED';
      hint = 'the credentials were refused: get a fresh token (popgate login) or check the user name';
      break;
    case 'SYS/TEMP':
      code = options.authenticating ? 'ERR_POP3_AUTH_TEMP' : 'ERR_POP3_ERR_RESPONSE';
      hint = 'a temporary server problem: retry later';
      break;
    case 'SYS/PERM':
      hint = 'a permanent server problem: contact the mail provider';
      break;
    case 'IN-USE':
      code = 'ERR_POP3_IN_USE';
      hint = 'another session holds the maildrop: close it or retry later';
      break;
    case 'LOGIN-DELAY':
      code = 'ERR_POP3_LOGIN_DELAY';
      hint = 'logged in too recently: wait the LOGIN-DELAY interval';
      break;
    default:
      if (options.authenticating) {
        code = 'ERR_POP3_AUTH_FAILED';
        hint = 'the server refused the login';
      }
  }
  const tag = response.code ? ` [${response.code}]` : '';
  const opts: ConstructorParameters<typeof Pop3Error>[2] = { serverText: response.text };
  if (response.code !== undefined) opts.responseCode = response.code;
  if (options.saslError !== undefined) opts.saslError = options.saslError;
  return new Pop3Error(code, `${verb} answered -ERR${tag}: ${hint}`, opts);
}
