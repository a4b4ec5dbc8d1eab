// `npm start`: the demo, the whole system on this machine (see run-demo.ts and docs/demo.md).
// Not part of the shipped `popgate` CLI; run from a clone: `npm start [-- --dir DIR] [-- --keep-running]`.
import { parseArgs } from 'node:util';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.ts';
import { PopgateError } from '../../src/errors.ts';
import { DevToolsError } from '../errors.ts';
import { runDemo } from './run-demo.ts';

const USAGE = `Usage: npm start [-- options]

Run the whole system on this machine: a throwaway CA, an OAuth2 authorization server, popgate
serve with a seeded Maildir, then login, fetch, refresh and logout; exits 0 only when every step
did what it says.

Options:
  --dir <dir>     parent folder of the demo; each run gets a fresh sub-folder (default: "./popgate-demo")
  --keep-running  leave the authorization server and POP3 server up and print how to point mutt or curl at them
  -h, --help      display help
`;

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function main(argv: string[]): Promise<number> {
  let flags: { dir?: string; 'keep-running'?: boolean; help?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        'keep-running': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return EXIT.OK;
  }
  const env = process.env;
  const interactive =
    Boolean(process.stdin.isTTY && process.stdout.isTTY) && env.CI !== 'true' && Boolean(env.DISPLAY);
  try {
    await runDemo({
      dir: flags.dir ?? './popgate-demo',
      keepRunning: flags['keep-running'] === true,
      interactive,
      out: process.stdout,
      env,
      untilStopped: untilSignal,
    });
    return EXIT.OK;
  } catch (error) {
    if (error instanceof DevToolsError) {
      // A failed demo step or a missing openssl: temporary from the user's side (EX_TEMPFAIL).
      process.stderr.write(`popgate: ${error.message} (${error.code})\n`);
      return EXIT.TEMPFAIL;
    }
    if (error instanceof PopgateError) {
      process.stderr.write(`popgate: ${error.message} (${error.code})\n`);
      return exitCodeFor(error);
    }
    // As the CLI does: the message only; stacks can carry request bodies from libraries.
    process.stderr.write(
      `popgate: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return EXIT.FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
