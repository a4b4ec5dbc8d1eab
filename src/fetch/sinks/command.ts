/**
 * Delivery to a command (procmail, dovecot-lda, `sendmail -i`, ...): the message (LF line
 * endings) on stdin, run through `/bin/sh -c`, success only on exit status 0. stderr is kept
 * (capped) for the report. The destination cannot be inspected after a crash, so an announced
 * but unconfirmed delivery is `unknown` and is delivered again (with `POPGATE_REDELIVERY=1` in
 * the environment so a command can deduplicate): at-least-once only in that narrow window.
 *
 * The command gets a minimal environment, not popgate's: the variables in
 * {@link DELIVERY_ENV_NAMES} (and `LC_*`) taken from `options.env`, plus `POPGATE_ACCOUNT`,
 * `POPGATE_UIDL` and `POPGATE_REDELIVERY`. Anything else popgate runs with (its passphrase, a
 * token, a client secret, proxies, editor settings) stays out, as Dovecot's `import_environment`
 * and cron keep their programs' environments to a named list. docs/fetch.md lists them.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { FetchError } from '../../errors.ts';
import { Spool, type SpoolFile } from './spool.ts';
import type { Intent, MessageInfo, PublishOutcome, RecoveryResult, Sink, Staged } from './types.ts';

const STDERR_CAP = 2048;

/**
 * The variables a delivery command inherits from popgate's environment (when set there): what
 * procmail, maildrop, dovecot-lda, sendmail and a shell script need to find programs, the user's
 * home and mailbox, and to format dates and text. `LC_*` passes too.
 */
export const DELIVERY_ENV_NAMES: readonly string[] = Object.freeze([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
]);

/** The environment of one delivery: the allowed names from `env`, then popgate's own variables. */
export function deliveryEnvironment(
  env: NodeJS.ProcessEnv,
  message: { account: string; uidl: string; redelivery: boolean },
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (DELIVERY_ENV_NAMES.includes(name) || /^LC_[A-Z_]+$/.test(name)) out[name] = value;
  }
  out.POPGATE_ACCOUNT = message.account;
  out.POPGATE_UIDL = message.uidl;
  if (message.redelivery) out.POPGATE_REDELIVERY = '1';
  return out;
}

interface CommandStaged extends Staged {
  readonly spool: SpoolFile;
}

export interface CommandSinkOptions {
  readonly spoolDir: string;
  /**
   * The environment popgate runs in (the CLI passes its own); the command gets only the
   * {@link DELIVERY_ENV_NAMES} part of it, see {@link deliveryEnvironment}.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Kill a command that runs longer than this (default 10 minutes). */
  readonly timeoutMs?: number;
  /** UIDLs whose earlier delivery is in doubt (set by the sync after recovery). */
  readonly redelivery?: Set<string>;
}

/** Keeps printable text only: command output goes into our messages and must not forge lines. */
function sanitize(text: string): string {
  return text.replace(/[^\x20-\x7e\t\n]/g, '?').trim();
}

export class CommandSink implements Sink {
  readonly kind = 'command' as const;
  readonly description: string;
  readonly command: string;
  readonly #spool: Spool;
  readonly #options: CommandSinkOptions;
  readonly redelivery: Set<string>;

  constructor(command: string, options: CommandSinkOptions) {
    this.command = command;
    this.description = `command ${command}`;
    this.#spool = new Spool(options.spoolDir);
    this.#options = options;
    this.redelivery = options.redelivery ?? new Set();
  }

  async open(): Promise<void> {
    await this.#spool.open();
  }

  async stage(message: Readable, info: MessageInfo): Promise<Staged> {
    const spool = await this.#spool.write(message, { lf: true });
    const staged: CommandStaged = { info, bytes: spool.bytes, messageId: spool.messageId, spool };
    return staged;
  }

  async publish(
    batch: readonly Staged[],
    announce: (intents: readonly Intent[]) => Promise<void>,
  ): Promise<PublishOutcome[]> {
    const outcomes: PublishOutcome[] = [];
    for (const staged of batch as readonly CommandStaged[]) {
      await announce([{ uidl: staged.info.uidl, key: { cmd: 1 } }]);
      try {
        outcomes.push(await this.#run(staged));
      } finally {
        await this.#spool.remove(staged.spool);
      }
    }
    return outcomes;
  }

  #run(staged: CommandStaged): Promise<PublishOutcome> {
    const env = deliveryEnvironment(this.#options.env ?? {}, {
      account: staged.info.account,
      uidl: staged.info.uidl,
      redelivery: this.redelivery.has(staged.info.uidl),
    });
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', this.command], { stdio: ['pipe', 'ignore', 'pipe'], env });
      let stderr = '';
      let settled = false;
      const finish = (outcome: PublishOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const fail = (why: string) =>
        finish({
          ok: false,
          error: new FetchError(
            'ERR_FETCH_DELIVERY',
            `the delivery command ${why}; the message was kept on the server and will be tried again` +
              (stderr ? `. Its stderr: ${sanitize(stderr)}` : ''),
          ),
        });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(`ran longer than ${Math.round((this.#options.timeoutMs ?? 600_000) / 1000)} s and was stopped`);
      }, this.#options.timeoutMs ?? 600_000);
      child.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < STDERR_CAP) stderr += chunk.toString('utf8').slice(0, STDERR_CAP - stderr.length);
      });
      child.once('error', (error) =>
        fail(`could not be started (${(error as NodeJS.ErrnoException).code ?? error.message})`),
      );
      child.once('close', (code, signal) => {
        if (code === 0) finish({ ok: true });
        else fail(signal ? `was killed by ${signal}` : `exited with status ${code}`);
      });
      // A command that exits without reading all of stdin gives EPIPE: its exit status decides.
      child.stdin.on('error', () => undefined);
      createReadStream(staged.spool.path)
        .on('error', () => child.stdin.destroy())
        .pipe(child.stdin);
    });
  }

  async discard(staged: Staged): Promise<void> {
    await this.#spool.remove((staged as CommandStaged).spool);
  }

  async recover(_key: unknown): Promise<RecoveryResult> {
    return 'unknown';
  }

  async close(): Promise<void> {}
}
