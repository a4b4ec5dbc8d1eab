// Maildir entries the store must not trust (docs/security.md, "Maildir files"): symbolic links,
// FIFOs, sockets, directories and hard links to other users' files in new/ and cur/, entries
// swapped after the listing, and state and lock files that are links or FIFOs. Real files on
// disk; a FIFO comes from the mkfifo binary, a socket from a listening server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import {
  chown,
  link,
  lutimes,
  mkdir,
  mkdtemp,
  readdir,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it as nodeIt, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { Logger } from '../../src/observability/logger.ts';
import { MaildirStore, type MaildirStoreOptions } from '../../src/store/maildir-store.ts';
import type { MaildropSession } from '../../src/store/types.ts';

const USER = 'dana@example.org';
/** What the "secret" files hold: never in a listing, a read, an error or a log line. */
const SECRET = 'TOP-SECRET-KEY-MATERIAL-0123456789';
/** A message exactly as long as SECRET + '\n', so a size check alone cannot tell them apart. */
const SAME_SIZE_MESSAGE = `Subject: x\n\n${'y'.repeat(SECRET.length + 1 - 'Subject: x\n\n'.length - 1)}\n`;
const NOBODY = 65534;
const isRoot = process.geteuid?.() === 0;

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string | undefined;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message?: string): void => {
      lines.push({ level, fields, message });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function setup(t: TestContext, options: MaildirStoreOptions = {}) {
  const root = await mkdtemp(join(tmpdir(), 'popgate-unsafe-'));
  const fifos: string[] = [];
  t.after(async () => {
    // A reader a red run left blocked in open(2) on a FIFO is released by opening the writing end.
    for (const fifo of fifos) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {}
    }
    await rm(root, { recursive: true, force: true });
  });
  const dir = join(root, USER);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  const outside = join(root, 'outside');
  await mkdir(outside);
  const secret = join(outside, 'tls.key');
  await writeFile(secret, `${SECRET}\n`, { mode: 0o600 });
  const logs: LogLine[] = [];
  const store = new MaildirStore(root, { logger: recordingLogger(logs), ...options });
  t.after(() => store.close());
  const mkfifo = async (path: string) => {
    await promisify(execFile)('mkfifo', [path]);
    fifos.push(path);
  };
  return { root, dir, outside, secret, logs, store, mkfifo, fifos };
}

async function readAll(session: MaildropSession, index: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await session.read(index)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

async function readWhole(session: MaildropSession, index: number): Promise<string> {
  const whole = await session.readWhole?.(index);
  assert.ok(whole, 'a small message is read whole');
  return whole.toString('latin1');
}

function assertNoSecret(logs: LogLine[], ...more: unknown[]): void {
  const text = JSON.stringify(logs) + more.map((m) => String((m as Error)?.message ?? m)).join('\n');
  assert.ok(!text.includes(SECRET), 'the secret file content leaked');
}

/** The skip warnings, as `file: reason`. */
function skipped(logs: LogLine[]): string[] {
  return logs
    .filter((l) => l.fields.code === 'ERR_STORE_UNSAFE_FILE' && typeof l.fields.file === 'string')
    .map((l) => `${l.fields.file}: ${l.fields.reason}`)
    .sort();
}

const unsafe = { code: 'ERR_STORE_UNSAFE_FILE' };

/** A bounded test: a read that blocks on a FIFO (the bug) fails the test instead of hanging it. */
const it = (name: string, fn: (t: TestContext) => Promise<void>) => nodeIt(name, { timeout: 20_000 }, fn);

describe('MaildirStore serves only regular files of the Maildir owner', () => {
  it('a symlink in new/ and one in cur/ to a secret file are not listed, and nothing reads them', async (t) => {
    const { dir, secret, logs, store } = await setup(t);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await symlink(secret, join(dir, 'new', '1700000002.M1P1.mx'));
    await symlink(secret, join(dir, 'cur', '1700000003.M1P1.mx:2,S'));
    const session = await store.open(USER);
    assert.equal(session.messages.length, 1, 'STAT/LIST/UIDL count only the regular file');
    assert.equal(await readAll(session, 0), 'Subject: real\r\n\r\nhello\r\n');
    await assert.rejects(session.read(1), { code: 'ERR_STORE_NO_SUCH_MESSAGE' });
    await session.release();
    // A second login logs nothing new: one line per entry, not one per login.
    await (await store.open(USER)).release();
    assert.deepEqual(skipped(logs), [
      'cur/1700000003.M1P1.mx:2,S: symbolic link',
      'new/1700000002.M1P1.mx: symbolic link',
    ]);
    assertNoSecret(logs);
  });

  it('a FIFO and a symlink to a FIFO in new/ neither block the open nor are listed', async (t) => {
    const { dir, outside, logs, store, mkfifo } = await setup(t);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await mkfifo(join(dir, 'new', '1700000002.M1P1.mx'));
    await mkfifo(join(outside, 'pipe'));
    await symlink(join(outside, 'pipe'), join(dir, 'new', '1700000003.M1P1.mx'));
    // Without O_NONBLOCK and the type checks, this open would hang in open(2) on the FIFO.
    const session = await store.open(USER);
    assert.equal(session.messages.length, 1);
    assert.equal(await readAll(session, 0), 'Subject: real\r\n\r\nhello\r\n');
    await session.release();
    assert.deepEqual(skipped(logs), [
      'new/1700000002.M1P1.mx: fifo',
      'new/1700000003.M1P1.mx: symbolic link',
    ]);
  });

  it('a directory and a socket in new/ are not listed', async (t) => {
    const { dir, logs, store } = await setup(t);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await mkdir(join(dir, 'new', '1700000002.M1P1.mx'));
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(dir, 'new', '1700000003.M1P1.mx'), resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const session = await store.open(USER);
    assert.equal(session.messages.length, 1);
    await session.release();
    assert.deepEqual(skipped(logs), ['new/1700000002.M1P1.mx: directory', 'new/1700000003.M1P1.mx: socket']);
  });

  it('a hard link to a file of another user is not listed (needs root to make one)', async (t) => {
    if (!isRoot) {
      t.diagnostic('not root: cannot create a file owned by another user');
      return;
    }
    const { dir, secret, logs, store } = await setup(t);
    await chown(secret, NOBODY, NOBODY);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await link(secret, join(dir, 'new', '1700000002.M1P1.mx'));
    const session = await store.open(USER);
    assert.equal(session.messages.length, 1);
    assert.equal(await readAll(session, 0), 'Subject: real\r\n\r\nhello\r\n');
    await session.release();
    assert.deepEqual(skipped(logs), ['new/1700000002.M1P1.mx: owned by another user']);
    assertNoSecret(logs);
  });

  for (const syncReadMaxBytes of [65536, 0]) {
    const how = syncReadMaxBytes === 0 ? 'thread-pool reads' : 'blocking reads';
    it(`a message swapped for a symlink to a same-size secret after the listing is refused (${how})`, async (t) => {
      const { dir, secret, logs, store } = await setup(t, { syncReadMaxBytes });
      const path = join(dir, 'new', '1700000001.M1P1.mx');
      await writeFile(path, SAME_SIZE_MESSAGE);
      const session = await store.open(USER);
      await rm(path);
      await symlink(secret, path);
      const errors = [];
      for (const read of [readWhole, readAll]) {
        const error = await read(session, 0).catch((e: unknown) => e);
        assert.equal((error as { code?: string }).code, unsafe.code, String(error));
        errors.push(error);
      }
      await session.release();
      assert.deepEqual(skipped(logs), ['new/1700000001.M1P1.mx: symbolic link']);
      assertNoSecret(logs, ...errors);
    });

    it(`a message swapped for a FIFO after the listing is refused, not waited on (${how})`, async (t) => {
      const { dir, outside, store, mkfifo, fifos } = await setup(t, { syncReadMaxBytes });
      const path = join(dir, 'new', '1700000001.M1P1.mx');
      await writeFile(path, 'Subject: real\n\nhello\n');
      const session = await store.open(USER);
      await mkfifo(join(outside, 'pipe'));
      await rename(join(outside, 'pipe'), path);
      fifos.push(path);
      await assert.rejects(session.read(0), unsafe);
      await session.release();
    });
  }

  it('a message swapped for a hard link to another user’s same-size file is refused (needs root)', async (t) => {
    if (!isRoot) {
      t.diagnostic('not root: cannot create a file owned by another user');
      return;
    }
    const { dir, secret, outside, logs, store } = await setup(t);
    await chown(secret, NOBODY, NOBODY);
    const path = join(dir, 'new', '1700000001.M1P1.mx');
    await writeFile(path, SAME_SIZE_MESSAGE);
    const session = await store.open(USER);
    await link(secret, join(outside, 'linked'));
    await rename(join(outside, 'linked'), path);
    const error = await session.read(0).catch((e: unknown) => e);
    assert.equal((error as { code?: string }).code, unsafe.code);
    await session.release();
    assertNoSecret(logs, error);
  });

  it('a message replaced by another file of the same size after the listing is not served', async (t) => {
    const { dir, outside, store } = await setup(t);
    const path = join(dir, 'new', '1700000001.M1P1.mx');
    await writeFile(path, SAME_SIZE_MESSAGE);
    const session = await store.open(USER);
    await writeFile(join(outside, 'other'), SAME_SIZE_MESSAGE.replace('Subject: x', 'Subject: z'));
    await rename(join(outside, 'other'), path);
    await assert.rejects(session.read(0), { code: 'ERR_STORE_IO', message: /changed on disk/ });
    await session.release();
  });

  it('a popgate-uidlist that is a symlink to a secret is refused, not followed', async (t) => {
    const { dir, secret, logs, store } = await setup(t);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await symlink(secret, join(dir, 'popgate-uidlist'));
    const error = await store.open(USER).catch((e: unknown) => e);
    assert.equal((error as { code?: string }).code, unsafe.code, String(error));
    assert.match((error as Error).message, /popgate-uidlist is a symbolic link/);
    assertNoSecret(logs, error);
  });

  it('a deletion journal that is a FIFO fails the open instead of blocking it', async (t) => {
    const { dir, store, mkfifo } = await setup(t);
    await writeFile(join(dir, 'new', '1700000001.M1P1.mx'), 'Subject: real\n\nhello\n');
    await mkfifo(join(dir, 'popgate-commit'));
    await assert.rejects(store.open(USER), unsafe);
    // The maildrop is not left locked by the refused open.
    await rm(join(dir, 'popgate-commit'));
    await (await store.open(USER)).release();
  });

  it('a session lock that is a symlink to a secret is broken once stale, and the log never shows the secret', async (t) => {
    const { dir, secret, logs, store } = await setup(t);
    const lock = join(dir, 'popgate.lock');
    await symlink(secret, lock);
    const old = new Date(Date.now() - 60_000);
    await utimes(secret, old, old);
    await lutimes(lock, old, old);
    const session = await store.open(USER);
    await session.release();
    const broke = logs.find((l) => l.message === 'broke a stale maildrop lock');
    assert.ok(broke, 'the stale lock was broken and logged');
    assertNoSecret(logs);
    assert.ok((await readdir(join(dir, '..', 'outside'))).includes('tls.key'), 'the target is untouched');
  });

  it('a session lock that is a FIFO does not block the open: stale once old, then broken', async (t) => {
    const { dir, store, mkfifo } = await setup(t);
    const lock = join(dir, 'popgate.lock');
    await mkfifo(lock);
    await assert.rejects(store.open(USER), { code: 'ERR_STORE_LOCKED' });
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    await (await store.open(USER)).release();
  });

  it('root delivering into another user’s Maildir gives the file to that user, and it is served', async (t) => {
    if (!isRoot) {
      t.diagnostic('not root: deliveries cannot change a file owner');
      return;
    }
    const { dir, store } = await setup(t);
    for (const d of [dir, join(dir, 'tmp'), join(dir, 'new'), join(dir, 'cur')])
      await chown(d, NOBODY, NOBODY);
    const uid = await store.deliver(USER, Buffer.from('Subject: for nobody\n\nhi\n'));
    const [name] = await readdir(join(dir, 'new'));
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(join(dir, 'new', name!))).uid, NOBODY);
    const session = await store.open(USER);
    assert.deepEqual(
      session.messages.map((m) => m.uid),
      [uid],
    );
    assert.equal(await readAll(session, 0), 'Subject: for nobody\r\n\r\nhi\r\n');
    await session.release();
  });
});
