// The in-process CLI context of the tests that call the CLI's main() (src/cli/main.ts): stdout and
// stderr are Writables that keep the text for the test's assertions and tee every chunk, as
// written, to the run's secret scan (appendTestLogChunk, test-log.ts), so output a test keeps only
// in memory is scanned like a child's (issue 11). Written as it arrives, not after main() returns:
// a test that times out or throws still leaves its output to the scan.
import { PassThrough, Writable } from 'node:stream';
import type { CliContext } from '../../src/cli/context.ts';
import { resolvePaths } from '../../src/cli/paths.ts';
import { appendTestLogChunk } from './test-log.ts';

/** A CLI output stream for tests: `text` so far, `onText` after each write, an optional tee. */
export class CapturedOutput extends Writable {
  text = '';
  isTTY?: boolean;
  columns?: number;
  onText: ((text: string) => void) | undefined;
  readonly #log: string | undefined;

  /** `log`: the scan log the text also goes to; undefined for output that is a secret by design. */
  constructor(log: string | undefined) {
    super();
    this.#log = log;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const text = chunk.toString('utf8');
    this.text += text;
    if (this.#log) appendTestLogChunk(this.#log, text);
    this.onText?.(this.text);
    done();
  }
}

/**
 * Whether the stdout of `args` is a secret by design (`token print`: the token; `proxy passwords
 * add`: the new app password), which the scan must not read; the same rule as the capture of
 * children (output-capture.mjs).
 */
export function stdoutIsSecret(args: readonly string[]): boolean {
  return (
    (args.includes('token') && args.includes('print')) || (args.includes('passwords') && args.includes('add'))
  );
}

export interface CapturedCliContext extends CliContext {
  readonly stdout: CapturedOutput;
  readonly stderr: CapturedOutput;
}

/**
 * A CliContext over `env` (paths resolved from it) whose stdout and stderr go to the scan under
 * `<log>-stdout` / `<log>-stderr`; pass the command's `args` so that a secret-by-design stdout is
 * left out.
 */
export function capturedCliContext(
  env: NodeJS.ProcessEnv,
  options: { log: string; args?: readonly string[]; stdin?: CliContext['stdin'] },
): CapturedCliContext {
  const stdout = new CapturedOutput(stdoutIsSecret(options.args ?? []) ? undefined : `${options.log}-stdout`);
  const stderr = new CapturedOutput(`${options.log}-stderr`);
  return {
    env,
    paths: resolvePaths(env),
    stdout,
    stderr,
    stdin: options.stdin ?? new PassThrough(),
    exitCode: 0,
  };
}
