import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `popgate` launcher of this checkout (bin/popgate.js), run as a user would. */
export const POPGATE_BIN = fileURLToPath(new URL('../../bin/popgate.js', import.meta.url));

export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Called with each line the child prints (stdout and stderr), for narration. */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  readonly input?: Buffer;
}

function splitLines(stream: NodeJS.ReadableStream | null, sink: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      sink(pending.slice(0, newline).replace(/\r$/, ''));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  });
  stream.on('end', () => {
    if (pending) sink(pending);
  });
}

/** Starts `popgate ARGS` as a real child process, the way a user would run it. */
export function startPopgate(
  args: readonly string[],
  options: RunOptions,
): { child: ChildProcess; done: Promise<ChildResult> } {
  const child = spawn(process.execPath, [POPGATE_BIN, ...args], {
    env: options.env,
    stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  splitLines(child.stdout, (line) => {
    stdout += `${line}\n`;
    options.onLine?.(line, 'stdout');
  });
  splitLines(child.stderr, (line) => {
    stderr += `${line}\n`;
    options.onLine?.(line, 'stderr');
  });
  if (options.input && child.stdin) child.stdin.end(options.input);
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `popgate ARGS` to completion. */
export function runPopgate(args: readonly string[], options: RunOptions): Promise<ChildResult> {
  return startPopgate(args, options).done;
}
