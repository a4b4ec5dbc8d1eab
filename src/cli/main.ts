import { Command, CommanderError } from 'commander';
import { PopgateError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { COMMANDS, EXIT_CODE_POLICIES } from './commands/index.ts';
import type { CliContext } from './context.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';

/** Builds the `popgate` command tree; exported so tests can check every documented flag exists. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('popgate')
    .description('Secure email access over POP3 with OAuth2: login, fetch, serve, proxy.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(add --help for the options)')
    .exitOverride();
  for (const register of COMMANDS) register(program, ctx);
  return program;
}

/**
 * Runs one command line. Every error a command throws ends here, once: one line on stderr
 * (`popgate: message (CODE)`) and the exit code of the command's policy (docs/cli.md).
 */
export async function main(argv: string[], ctx: CliContext): Promise<number> {
  ctx.run ??= (args) => main([...args], { ...ctx, exitCode: EXIT.OK });
  const program = buildProgram(ctx);
  let running: string | undefined;
  program.hook('preAction', (_program, action) => {
    // The top-level subcommand (`token` for `popgate token print`) picks the exit code policy.
    let top = action;
    while (top.parent && top.parent !== program) top = top.parent;
    running = top.name();
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof PopgateError) {
      ctx.stderr.write(`popgate: ${error.message} (${error.code})\n`);
    } else {
      // Unknown errors: print the message only; stacks can carry request bodies from libraries.
      ctx.stderr.write(
        `popgate: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
    const policy = (running && EXIT_CODE_POLICIES[running]) || exitCodeFor;
    return policy(error);
  }
}
