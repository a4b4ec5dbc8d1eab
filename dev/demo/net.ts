import type { ChildProcess } from 'node:child_process';
import { DevToolsError } from '../errors.ts';

/** Resolves when the child prints a stdout line matching `pattern`; rejects if it exits first. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(
      () => finish(new DevToolsError('ERR_DEMO_STEP', `no "${pattern.source}" within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer | string): void => {
      pending += chunk.toString();
      for (const line of pending.split('\n')) {
        if (pattern.test(line)) {
          finish(undefined, line);
          return;
        }
      }
      pending = pending.slice(pending.lastIndexOf('\n') + 1);
    };
    const onExit = (code: number | null): void =>
      finish(
        new DevToolsError(
          'ERR_DEMO_STEP',
          `the process exited (code ${code}) before printing "${pattern.source}"`,
        ),
      );
    function finish(error: Error | undefined, line?: string): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line ?? '');
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}
