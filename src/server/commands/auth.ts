import { performance } from 'node:perf_hooks';
import type { ValidatedToken } from '../../auth/types.ts';
import { TokenValidationError } from '../../errors.ts';
import { decodeOAuthBearer } from '../../sasl/oauthbearer.ts';
import { decodeXOAuth2 } from '../../sasl/xoauth2.ts';
import { errorChallenge, failureReason, failureText } from '../auth-failure.ts';
import type { CommandContext } from '../context.ts';
import type { ServerMechanism } from '../options.ts';
import { PLAINTEXT_DISALLOWED } from '../plaintext-policy.ts';
import type { CommandHandler } from '../registry.ts';

/**
 * AUTH [mechanism [initial-response]] (RFC 5034, RFC 7628, Google XOAUTH2).
 * - No argument: the old-style listing of mechanisms (what Outlook-era clients probe).
 * - SASL-IR or two-step (`+ ` then the response line, up to the SASL cap); `*` cancels,
 *   `=` is an empty initial response.
 * - Refused token: the RFC 7628 error challenge, the client's `%x01` (OAUTHBEARER) or empty
 *   line (XOAUTH2), then `-ERR [AUTH]`. Identity-provider outage: `-ERR [SYS/TEMP]`, no penalty.
 */
export const auth: CommandHandler = {
  verb: 'AUTH',
  states: ['AUTHORIZATION'],
  minArgs: 0,
  maxArgs: 2,
  multiline: 'without-argument',
  async run(ctx, args) {
    const offered = ctx.credentialsAllowed ? ctx.options.mechanisms : [];
    const name = args[0];
    if (name === undefined) {
      ctx.multiline('Supported mechanisms follow', offered);
      return;
    }
    if (!ctx.credentialsAllowed) {
      ctx.err(PLAINTEXT_DISALLOWED, 'AUTH');
      return;
    }
    const mechanism = offered.find((m) => m === name.toUpperCase());
    if (mechanism === undefined) {
      ctx.err('Unsupported authentication mechanism.');
      return;
    }
    let response = args[1];
    if (response === undefined) {
      ctx.continuation('');
      response = await ctx.readResponse();
      if (response === undefined) return;
    }
    if (response === '*') {
      ctx.err('Authentication cancelled.');
      return;
    }
    if (response === '=') response = '';
    await exchange(ctx, mechanism, response);
  },
};

async function exchange(ctx: CommandContext, mechanism: ServerMechanism, response: string): Promise<void> {
  const cap = ctx.options.limits.maxSaslResponse;
  let user: string | undefined;
  let token: string;
  try {
    const decoded = mechanism === 'XOAUTH2' ? decodeXOAuth2(response, cap) : decodeOAuthBearer(response, cap);
    user = decoded.user;
    token = decoded.token;
  } catch (error) {
    await ctx.loginFailed({ user: undefined, reason: failureReason(error), mechanism, temporary: false });
    ctx.err('Invalid SASL response.', 'AUTH');
    return;
  }
  const { validator, metrics } = ctx.options;
  const started = performance.now();
  let validated: ValidatedToken;
  try {
    validated = await validator.validate(token, { user });
    metrics?.tokenValidationSeconds.observe(
      { method: validated.method, result: 'ok' },
      (performance.now() - started) / 1000,
    );
  } catch (error) {
    const temporary = !(error instanceof TokenValidationError) || error.temporary;
    metrics?.tokenValidationSeconds.observe(
      { method: 'unknown', result: temporary ? 'temp' : 'fail' },
      (performance.now() - started) / 1000,
    );
    if (temporary) {
      await ctx.loginFailed({ user, reason: failureReason(error), mechanism, temporary: true });
      ctx.err('Temporary authentication failure; try again later.', 'SYS/TEMP');
      return;
    }
    await refuse(ctx, mechanism, user, error);
    return;
  }
  // The validator has bound the SASL user to the token (compared in canonical form, so
  // `Alice@Example.test` matches an `email` claim `alice@example.test`) and required the read
  // scope (TokenValidator contract, src/auth/types.ts); the maildrop opened is the token's user.
  await ctx.login({ user: validated.user, mechanism, token: validated });
}

/** The RFC 7628 failure: challenge, wait for the client's answer, then `-ERR [AUTH]`. */
async function refuse(
  ctx: CommandContext,
  mechanism: ServerMechanism,
  user: string | undefined,
  error: unknown,
): Promise<void> {
  ctx.continuation(errorChallenge(mechanism, ctx.options.validator, error));
  const answer = await ctx.readResponse();
  await ctx.loginFailed({ user, reason: failureReason(error), mechanism, temporary: false });
  if (answer === undefined) return;
  ctx.err(failureText(error), 'AUTH');
}
