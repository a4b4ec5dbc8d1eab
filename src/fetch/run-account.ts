/**
 * One account's complete fetch: lock the account, open the state and the destination, recover,
 * connect (TLS always verified), authenticate with a token provider, sync, QUIT. Library code:
 * every input is an explicit option; the CLI resolves config, env and flags into them.
 */
import { join } from 'node:path';
import type { Pop3TlsMode } from '../client/options.ts';
import { Pop3Client, type TokenProvider } from '../client/pop3-client.ts';
import type { Logger } from '../observability/logger.ts';
import { lockAccount } from './lock.ts';
import { pop3Session } from './pop3-session.ts';
import { CommandSink } from './sinks/command.ts';
import { MaildirSink } from './sinks/maildir.ts';
import { MboxSink } from './sinks/mbox.ts';
import type { Sink } from './sinks/types.ts';
import { UidlState } from './state.ts';
import { type SyncProgress, type SyncReport, syncAccount } from './sync.ts';

/** Where mail goes: `maildir:DIR`, `mbox:FILE`, or a delivery command. */
export type Destination =
  | { readonly kind: 'maildir'; readonly path: string }
  | { readonly kind: 'mbox'; readonly path: string }
  | { readonly kind: 'command'; readonly command: string };

export interface RunAccountOptions {
  readonly account: string;
  /** popgate's state directory (`$XDG_STATE_HOME/popgate`). */
  readonly stateDir: string;
  readonly host: string;
  readonly port?: number;
  readonly tls: Pop3TlsMode;
  readonly ca?: string;
  readonly servername?: string;
  readonly user: string;
  /** Default: OAUTHBEARER when offered, else XOAUTH2. PLAIN (a password) only for benchmarks and legacy servers. */
  readonly mechanism?: 'XOAUTH2' | 'OAUTHBEARER' | 'PLAIN';
  readonly token: string | TokenProvider;
  readonly destination: Destination;
  readonly delete?: boolean;
  readonly deleteAfterDays?: number;
  readonly maxSize?: number;
  readonly limit?: number;
  /** Wait this long for the account lock (default 0). */
  readonly lockWaitMs?: number;
  /** Stop gracefully after the message in flight. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: SyncProgress) => void;
  readonly logger?: Logger;
  /** Environment given to a delivery command. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunAccountReport extends SyncReport {
  readonly elapsedMs: number;
  /** LOGIN-DELAY the server announced after login (seconds), for --watch. */
  readonly loginDelaySeconds: number | undefined;
}

/** The state directory of one account. */
export function accountStateDir(stateDir: string, account: string): string {
  return join(stateDir, 'accounts', encodeURIComponent(account));
}

export function createSink(destination: Destination, accountDir: string, env?: NodeJS.ProcessEnv): Sink {
  switch (destination.kind) {
    case 'maildir':
      return new MaildirSink(destination.path);
    case 'mbox':
      return new MboxSink(destination.path, { spoolDir: join(accountDir, 'spool') });
    case 'command':
      return new CommandSink(destination.command, { spoolDir: join(accountDir, 'spool'), env: env ?? {} });
  }
}

export async function runAccount(options: RunAccountOptions): Promise<RunAccountReport> {
  const started = Date.now();
  const dir = accountStateDir(options.stateDir, options.account);
  const lock = await lockAccount(dir, options.account, { waitMs: options.lockWaitMs ?? 0 });
  try {
    const state = await UidlState.open(join(dir, 'uidl.journal'));
    const sink = createSink(options.destination, dir, options.env);
    try {
      await sink.open();
      const client = new Pop3Client({
        host: options.host,
        tls: options.tls,
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(options.servername !== undefined ? { servername: options.servername } : {}),
        ...(options.logger !== undefined ? { logger: options.logger } : {}),
        // PLAIN is a password: only when the caller chose it explicitly (benchmarks, legacy servers).
        allowPasswordLogin: options.mechanism === 'PLAIN',
      });
      try {
        const caps = await client.connect();
        const mechanism =
          options.mechanism ?? (caps.sasl.includes('OAUTHBEARER') ? 'OAUTHBEARER' : 'XOAUTH2');
        await client.authenticate({ mechanism, user: options.user, token: options.token });
        const report = await syncAccount(pop3Session(client), {
          account: options.account,
          state,
          sink,
          ...(options.delete !== undefined ? { delete: options.delete } : {}),
          ...(options.deleteAfterDays !== undefined ? { deleteAfterDays: options.deleteAfterDays } : {}),
          ...(options.maxSize !== undefined ? { maxSize: options.maxSize } : {}),
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
          ...(options.signal !== undefined ? { signal: options.signal } : {}),
          ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
        });
        return {
          ...report,
          elapsedMs: Date.now() - started,
          loginDelaySeconds: client.capabilities?.loginDelay?.seconds,
        };
      } finally {
        client.close();
      }
    } finally {
      await sink.close();
      await state.close();
    }
  } finally {
    await lock.release();
  }
}
