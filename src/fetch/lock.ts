/**
 * The account lock: one `popgate fetch` per account at a time, across processes.
 *
 * On Linux it is an abstract Unix socket named after the account's state path: binding is
 * exclusive, and the kernel frees the name the instant the holder dies, even on kill -9, so a
 * crashed run never leaves a stale lock. Elsewhere the shared lock file (src/internal/lock-file.ts)
 * is used, taken over when its process is gone; one written on another host is never taken over.
 * A `holder` file says who holds it, for the message.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FetchError } from '../errors.ts';
import { tryLock } from '../internal/lock-file.ts';

export interface AccountLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Wait up to this long for the lock (default 0: fail at once). */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
}

async function bindAbstract(name: string): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(undefined);
      else reject(error);
    });
    server.listen({ path: `\0${name}`, exclusive: true }, () => {
      server.unref();
      resolve(server);
    });
  });
}

async function holderText(dir: string): Promise<string> {
  const text = (await readFile(join(dir, 'holder'), 'utf8').catch(() => '')).trim();
  const [pid, host] = text.split(/\s+/);
  return pid ? ` (process ${pid}${host ? ` on ${host}` : ''})` : '';
}

/**
 * Takes the lock of the account whose state lives in `dir`.
 * @throws FetchError `ERR_FETCH_LOCKED` when another fetch holds it past `waitMs`.
 */
export async function lockAccount(
  dir: string,
  account: string,
  options: LockOptions = {},
): Promise<AccountLock> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + (options.waitMs ?? 0);
  const useAbstract = process.platform === 'linux';
  const name = `popgate-fetch-${createHash('sha256').update(dir).digest('hex').slice(0, 32)}`;
  const pidPath = join(dir, 'lock');
  for (;;) {
    if (useAbstract) {
      const server = await bindAbstract(name);
      if (server) {
        await writeFile(join(dir, 'holder'), `${process.pid} ${hostname()}\n`, { mode: 0o600 });
        return {
          release: () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
            }),
        };
      }
    } else {
      const held = await tryLock(pidPath, { foreignStaleMs: Number.POSITIVE_INFINITY });
      if (held) {
        await writeFile(join(dir, 'holder'), `${process.pid} ${hostname()}\n`, { mode: 0o600 });
        return { release: () => held.release().catch(() => undefined) };
      }
    }
    if (Date.now() >= deadline || options.signal?.aborted) {
      throw new FetchError(
        'ERR_FETCH_LOCKED',
        `another popgate fetch is running for account ${account}${await holderText(dir)}; ` +
          'it will finish on its own. Wait for it, or pass --wait to queue behind it',
      );
    }
    await sleep(Math.min(250, Math.max(10, deadline - Date.now())));
  }
}
