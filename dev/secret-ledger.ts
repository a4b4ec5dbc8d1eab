/**
 * The test run's secret ledger: every secret the dev tools mint (access, refresh and ID tokens,
 * device and authorization codes, client secrets, HMAC keys, test passwords) is appended, one a
 * line, to the file named by `POPGATE_SECRET_LEDGER` when it is set. `npm test` (test/run.mjs)
 * sets it, then scans everything the run printed and logged for each recorded secret, so the
 * proof "no token in any log line or error message" cannot pass for want of tokens to look for.
 *
 * Dev tools only (tests and the demo; dev/ is not shipped); a no-op when the variable is unset. It
 * reads the environment itself, outside src/cli, because the ledger is a property of the test run:
 * the mints run in test processes and in children (the demo) that inherit it, not through the CLI.
 *
 * @example
 * ```ts
 * const token = await key.sign(claims);
 * recordTestSecret(token);
 * ```
 */
import { appendFileSync } from 'node:fs';

/** Appends `value` to the ledger file (append mode, created 0600); no-op when unset or empty. */
export function recordTestSecret(value: string | undefined): void {
  const ledger = process.env.POPGATE_SECRET_LEDGER;
  if (!ledger || !value || /[\r\n]/.test(value)) return;
  // One small O_APPEND write per secret: lines from parallel test processes never interleave.
  appendFileSync(ledger, `${value}\n`, { mode: 0o600 });
}
