// `popgate demo` (what `npm start` runs): the whole system on this machine. See src/demo/.
import type { Command } from 'commander';
import { runDemo } from '../../demo/run-demo.ts';
import type { RegisterCommand } from '../command.ts';
import type { CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';

interface DemoFlags {
  dir: string;
  keepRunning?: boolean;
}

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

export const registerDemo: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('demo')
    .description(
      'Run the whole system on this machine: a throwaway CA, an OAuth2 authorization server, popgate serve with a seeded Maildir, then login, fetch, refresh and logout; exits 0 only when every step did what it says',
    )
    .option('--dir <dir>', 'parent folder of the demo; each run gets a fresh sub-folder', './popgate-demo')
    .option(
      '--keep-running',
      'leave the authorization server and POP3 server up and print how to point mutt or curl at them',
    )
    .action(async (flags: DemoFlags) => {
      const interactive =
        Boolean(ctx.stdin.isTTY && ctx.stdout.isTTY) && ctx.env.CI !== 'true' && Boolean(ctx.env.DISPLAY);
      await runDemo({
        dir: flags.dir,
        keepRunning: flags.keepRunning === true,
        interactive,
        out: ctx.stdout,
        env: ctx.env,
        untilStopped: untilSignal,
      });
      ctx.exitCode = EXIT.OK;
    });
};
