// Output a test keeps in memory (captured CLI stdout/stderr, logger records, error messages) is
// also appended here, so the run-level secret scan of test/run.mjs reads it (issue 3).
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Appends `text` to `<POPGATE_TEST_LOG_DIR>/<name>-<pid>.log` (0600); no-op when the variable is
 * unset (a test file run without test/run.mjs).
 */
export function appendTestLog(name: string, text: string): void {
  const dir = process.env.POPGATE_TEST_LOG_DIR;
  if (!dir || !text) return;
  appendFileSync(join(dir, `${name}-${process.pid}.log`), text.endsWith('\n') ? text : `${text}\n`, {
    mode: 0o600,
  });
}
