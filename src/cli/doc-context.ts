import { PassThrough } from 'node:stream';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import { resolvePaths } from './paths.ts';

/** A context with fixed paths and no real streams, so generated help text is the same everywhere. */
export function docContext(): CliContext {
  const env = { HOME: '/home/user' };
  return {
    env,
    paths: resolvePaths(env),
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: new PassThrough(),
    exitCode: EXIT.OK,
  };
}
