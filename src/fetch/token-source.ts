/**
 * External token sources for users of other token helpers (`--token-command`, `--token-file`),
 * beside popgate's own token manager. Both are {@link TokenProvider}s: on an `[AUTH]` refusal the
 * client asks again with `forceRefresh`, which re-runs the command or re-reads the file.
 * The token is a secret: it never reaches a message, a log line or an error field.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import type { TokenProvider } from '../client/pop3-client.ts';
import { ConfigError, OAuthError } from '../errors.ts';

const MAX_TOKEN = 64 * 1024;

function clean(raw: string, where: string): string {
  const token = raw.trim();
  if (token.length === 0) throw new OAuthError('ERR_OAUTH_NO_TOKEN', `${where} gave an empty token`);
  if (token.length > MAX_TOKEN || /[\s\0]/.test(token)) {
    throw new OAuthError(
      'ERR_OAUTH_RESPONSE',
      `${where} did not give a single token (whitespace inside or over 64 KiB)`,
    );
  }
  return token;
}

/** Runs `command` through /bin/sh; its stdout (trimmed) is the token. Exit status must be 0. */
export function tokenCommandProvider(
  command: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
): TokenProvider {
  return ({ forceRefresh }) =>
    new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...env, POPGATE_FORCE_REFRESH: forceRefresh ? '1' : '0' },
      });
      let out = '';
      let errText = '';
      let timedOut = false;
      // On timeout the shell is killed and the answer given at once: a command the shell started
      // (`sleep 100; echo TOKEN` forks `sleep`) keeps the pipes open after the shell dies, so
      // waiting for them to close would wait for it too.
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        child.stdout.destroy();
        child.stderr.destroy();
        reject(
          new OAuthError(
            'ERR_OAUTH_TRANSIENT',
            `token_command did not finish within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`} and was stopped`,
          ),
        );
      }, timeoutMs);
      child.stdout.on('data', (c: Buffer) => {
        if (out.length <= MAX_TOKEN) out += c.toString('utf8');
      });
      child.stderr.on('data', (c: Buffer) => {
        if (errText.length < 500) errText += c.toString('utf8');
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new ConfigError('ERR_CONFIG_INVALID', `token_command could not be started: ${error.message}`, {
            key: 'token_command',
          }),
        );
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) return;
        if (code !== 0) {
          // stderr is shown (capped, printable only): it is the helper's own diagnostics, not stdout.
          const detail = errText
            .replace(/[^\x20-\x7e]/g, ' ')
            .trim()
            .slice(0, 300);
          reject(
            new OAuthError(
              'ERR_OAUTH_TRANSIENT',
              `token_command ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${detail ? `: ${detail}` : ''}`,
            ),
          );
          return;
        }
        try {
          resolve(clean(out, 'token_command'));
        } catch (error) {
          reject(error);
        }
      });
    });
}

/** Reads the token from `path`, which must not be readable by group or others. */
export function tokenFileProvider(path: string): TokenProvider {
  return async () => {
    let mode: number;
    try {
      mode = (await stat(path)).mode;
    } catch (error) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `token_file ${path} cannot be read: ${(error as NodeJS.ErrnoException).code}`,
        {
          key: 'token_file',
        },
      );
    }
    if ((mode & 0o077) !== 0) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `token_file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${path}`,
        { key: 'token_file' },
      );
    }
    return clean(await readFile(path, 'utf8'), `token_file ${path}`);
  };
}
