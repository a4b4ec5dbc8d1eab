// The process entry point: the only place that reads process.* and sets the exit code.
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import { main } from './main.ts';
import { resolvePaths } from './paths.ts';

const ctx: CliContext = {
  env: process.env,
  paths: resolvePaths(process.env),
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  exitCode: EXIT.OK,
};
process.exitCode = await main(process.argv.slice(2), ctx);
