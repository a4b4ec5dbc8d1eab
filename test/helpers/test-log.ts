// Output a test keeps in memory (captured CLI stdout/stderr, logger records, error messages) is
// also appended here, so the run-level secret scan of test/run.mjs reads it (issue 3). So are the
// files popgate wrote into a test's temp dir (state, spool, Maildir, token store, config), copied
// just before the test removes the dir (issue 11).
import { scryptSync } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { SCRYPT_PARAMS } from '../../src/oauth/stores/key-source.ts';

/**
 * Appends `text` to `<POPGATE_TEST_LOG_DIR>/<name>-<pid>.log` (0600); no-op when the variable is
 * unset (a test file run without test/run.mjs).
 */
export function appendTestLog(name: string, text: string): void {
  const dir = process.env.POPGATE_TEST_LOG_DIR;
  if (!dir || !text) return;
  appendFileSync(join(dir, `${name}-${process.pid}.log`), text.endsWith('\n') ? text : `${text}\n`, {
    mode: 0o600,
  });
}

/** How much of each file scanTreeBeforeRemoval copies. */
export const TREE_FILE_CAP = 1024 * 1024;

export interface TreeScanOptions {
  /**
   * Files the test itself wrote with a secret in plain text on purpose — a `token_file`, a client
   * secret file, a peer's config holding its password — that are not copied: a path relative to
   * the dir (or absolute), or `**` + `/NAME` for a file NAME at any depth. Never popgate's own files.
   */
  readonly except?: readonly string[];
  /** Sub-directories (relative) not to descend into: a git clone's `.git`, a copied source tree. */
  readonly skipDirs?: readonly string[];
  /** Passphrases the test gave popgate: the token-store key each derives is recorded too. */
  readonly passphrases?: readonly string[];
}

let trees = 0;

/**
 * Before a test deletes a temp dir popgate wrote into, copies the first TREE_FILE_CAP bytes of
 * every regular file under it (as-is: the scanner looks for byte strings, including the base64 of
 * each secret) to `<POPGATE_TEST_LOG_DIR>/tree-<pid>-<n>-<dir name>/<relative path>`, so the run's
 * secret scan reads state files, spool, Maildirs, config and the encrypted token store. Symlinks,
 * sockets and FIFOs are skipped.
 *
 * The token store's key (a `token.key` file: 32 bytes, base64) goes to the ledger instead, in the
 * forms code might print it (stored base64, base64url, hex), and the key file is not copied: it
 * holds the key by design. The same for the key each of `options.passphrases` derives with the
 * `passphrase.salt` beside it. So an encrypted token file passes the scan and a plaintext token,
 * or the key, anywhere else fails it.
 *
 * The ledger half works without the test runner; the copy is a no-op when POPGATE_TEST_LOG_DIR is
 * unset. Never throws for a file that vanished or cannot be read (a test's cleanup must not fail).
 */
export function scanTreeBeforeRemoval(dir: string, options: TreeScanOptions = {}): void {
  const logDir = process.env.POPGATE_TEST_LOG_DIR;
  const exceptList = options.except ?? [];
  const except = new Set(exceptList.map((p) => (isAbsolute(p) ? relative(dir, p) : p)));
  const exceptNames = new Set(exceptList.filter((p) => p.startsWith('**/')).map((p) => p.slice(3)));
  const skipDirs = new Set(options.skipDirs ?? []);
  const target = logDir ? join(logDir, `tree-${process.pid}-${++trees}-${basename(dir)}`) : undefined;
  const buffer = Buffer.alloc(TREE_FILE_CAP);
  const walk = (sub: string): void => {
    let names: string[];
    try {
      names = readdirSync(join(dir, sub)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const rel = sub ? `${sub}${sep}${name}` : name;
      const path = join(dir, rel);
      let info: ReturnType<typeof lstatSync>;
      try {
        info = lstatSync(path);
      } catch {
        continue;
      }
      if (info.isDirectory()) {
        if (!skipDirs.has(rel)) walk(rel);
        continue;
      }
      if (!info.isFile()) continue;
      if (name === 'token.key') {
        recordStoreKeyFile(path);
        continue;
      }
      if (name === 'passphrase.salt') recordPassphraseKeys(path, options.passphrases ?? []);
      if (except.has(rel) || exceptNames.has(name) || target === undefined) continue;
      try {
        const fd = openSync(path, 'r');
        let length = 0;
        try {
          while (length < TREE_FILE_CAP) {
            const n = readSync(fd, buffer, length, TREE_FILE_CAP - length, null);
            if (n === 0) break;
            length += n;
          }
        } finally {
          closeSync(fd);
        }
        const copy = join(target, rel);
        mkdirSync(dirname(copy), { recursive: true, mode: 0o700 });
        writeFileSync(copy, buffer.subarray(0, length), { mode: 0o600 });
      } catch {
        // vanished or unreadable (a 0000 file a test made on purpose): nothing to copy
      }
    }
  };
  walk('');
}

/** scanTreeBeforeRemoval, then removes the dir (recursive, force). */
export async function removeTempTree(dir: string, options: TreeScanOptions = {}): Promise<void> {
  scanTreeBeforeRemoval(dir, options);
  await rm(dir, { recursive: true, force: true });
}

/** Records a key in the ledger in the encodings code might print it in. */
export function recordKeyForms(key: Buffer): void {
  for (const encoding of ['base64', 'base64url', 'hex'] as const) recordTestSecret(key.toString(encoding));
}

function recordStoreKeyFile(path: string): void {
  if (!process.env.POPGATE_SECRET_LEDGER) return;
  try {
    const text = readFileSync(path, 'utf8');
    recordTestSecret(text.trim());
    recordKeyForms(Buffer.from(text.trim(), 'base64'));
  } catch {
    // unreadable: nothing to record
  }
}

function recordPassphraseKeys(saltPath: string, passphrases: readonly string[]): void {
  if (!process.env.POPGATE_SECRET_LEDGER || passphrases.length === 0) return;
  try {
    const salt = Buffer.from(readFileSync(saltPath, 'utf8').trim(), 'base64');
    for (const passphrase of passphrases) recordKeyForms(scryptSync(passphrase, salt, 32, SCRYPT_PARAMS));
  } catch {
    // unreadable: nothing to record
  }
}

/** Appends `text` as-is (no newline added: a chunk of a stream) to the same file as appendTestLog. */
export function appendTestLogChunk(name: string, text: string): void {
  const dir = process.env.POPGATE_TEST_LOG_DIR;
  if (!dir || !text) return;
  appendFileSync(join(dir, `${name}-${process.pid}.log`), text, { mode: 0o600 });
}
