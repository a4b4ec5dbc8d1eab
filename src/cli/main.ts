import { Command, CommanderError } from 'commander';
import { PopgateError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { COMMANDS } from './commands/index.ts';
import type { CliContext } from './context.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';

/** Builds the `popgate` command tree; exported so tests can check every documented flag exists. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('popgate')
    .description('Secure email access over POP3 with OAuth2: login, fetch, serve, proxy.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program, ctx);
  return program;
}

export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof PopgateError) {
      ctx.stderr.write(`popgate: ${error.message} (${error.code})\n`);
      return exitCodeFor(error);
    }
    // Unknown errors: print the message only; stacks can carry request bodies from libraries.
    ctx.stderr.write(
      `popgate: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return EXIT.FAILURE;
  }
}
