import type { RegisterCommand } from '../command.ts';
import type { ExitCode } from '../exit-codes.ts';
import { deliverExitCode, registerDeliver } from './deliver.ts';
import { registerDoctor } from './doctor.ts';
import { registerFetch } from './fetch.ts';
import { registerInit } from './init.ts';
import { registerLogin } from './login.ts';
import { registerLogout } from './logout.ts';
import { registerProxy } from './proxy.ts';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';

/** Every subcommand, in the order `popgate --help` lists them. */
export const COMMANDS: readonly RegisterCommand[] = [
  registerLogin,
  registerLogout,
  registerToken,
  registerInit,
  registerFetch,
  registerDoctor,
  registerDeliver,
  registerServe,
  registerProxy,
];

/**
 * Commands whose errors map to exit codes their own way (main() uses exitCodeFor for the rest):
 * `deliver` is an MDA, where anything unexpected must be 75 so the MTA keeps the message.
 */
export const EXIT_CODE_POLICIES: Readonly<Record<string, (error: unknown) => ExitCode>> = {
  deliver: deliverExitCode,
};
