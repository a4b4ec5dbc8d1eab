// What a subcommand module exports: a function that registers it (or a group) on the program.
// Commands throw; main() turns every error into one message and exit code (see main.ts).
import type { Command } from 'commander';
import type { CliContext } from './context.ts';

/** Registers one subcommand (or a group) on the program. One file per command in commands/. */
export type RegisterCommand = (program: Command, ctx: CliContext) => void;
