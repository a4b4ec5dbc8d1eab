import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerDeliver } from './deliver.ts';
import { registerDoctor } from './doctor.ts';
import { registerFetch } from './fetch.ts';
import { registerInit } from './init.ts';
import { registerLogin } from './login.ts';
import { registerLogout } from './logout.ts';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';

/** Registers one subcommand (or a group) on the program. One file per command in this folder. */
export type RegisterCommand = (program: Command, ctx: CliContext) => void;

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
];
