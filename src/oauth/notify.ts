/**
 * The re-login notify hook: runs a user-configured command (no shell) with the account name as
 * its last argument, e.g. `notify-send "popgate: log in again"`. The message carries no secret.
 */
import { execFile } from 'node:child_process';
import { ConfigError } from '../errors.ts';

/** Splits a command line into words; double and single quotes group, no other shell syntax. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const match of command.matchAll(re)) words.push(match[1] ?? match[2] ?? match[3] ?? '');
  if (words.length === 0) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'notify_command is empty', { key: 'notify_command' });
  }
  return words;
}

/** Runs the notify command for `account` with a 10 s timeout; rejects when it fails. */
export function runNotifyCommand(command: string, account: string, timeoutMs = 10_000): Promise<void> {
  const [file, ...args] = splitCommand(command);
  return new Promise((resolve, reject) => {
    execFile(file as string, [...args, account], { timeout: timeoutMs, shell: false }, (error) => {
      if (error) reject(new Error(`notify command failed: ${error.code ?? error.message}`));
      else resolve();
    });
  });
}
