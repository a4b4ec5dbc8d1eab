/**
 * Chooses where the token store key comes from, the same way on every run:
 *
 * 1. a forced choice (`POPGATE_KEY_SOURCE` in the CLI) wins;
 * 2. a passphrase given up front (`POPGATE_PASSPHRASE`);
 * 3. the choice recorded by an earlier login (`<dataDir>/key-source`), so a key is never
 *    silently replaced by another one that cannot open the existing token files;
 * 4. otherwise an existing key file or salt (installs older than the record), then the OS
 *    keyring when it is usable, else a new key file, with a note saying why the keyring was not
 *    used.
 *
 * The library never reads the environment or a terminal: the CLI passes the passphrase and a
 * function that prompts for one.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, TokenStoreError } from '../../errors.ts';
import { ensurePrivateDir, writeFileAtomic } from './fs-safe.ts';
import { KeyFileSource, type KeySource, PassphraseKeySource } from './key-source.ts';
import type { KeyringKeySource } from './keyring-key-source.ts';

/** The names users give the key sources (`POPGATE_KEY_SOURCE`). */
export type KeySourceKind = 'keyring' | 'file' | 'passphrase';

export const KEY_SOURCE_KINDS: readonly KeySourceKind[] = Object.freeze(['keyring', 'file', 'passphrase']);

export interface KeySourceSelectionOptions {
  /** popgate's data directory (`$XDG_DATA_HOME/popgate`): key file, salt and the record live here. */
  readonly dataDir: string;
  /** Use this source and no other. */
  readonly force?: KeySourceKind;
  /** A passphrase known up front (the CLI's `POPGATE_PASSPHRASE`). */
  readonly passphrase?: string;
  /**
   * Asks the user for the passphrase when the passphrase source is chosen and none was given;
   * `confirm` is true when no salt exists yet (a new passphrase: ask twice).
   */
  readonly askPassphrase?: (options: { readonly confirm: boolean }) => Promise<string>;
  /** The OS keyring, or undefined when none can exist here (then `keyringAbsentReason` says why). */
  readonly keyring?: KeyringKeySource;
  readonly keyringAbsentReason?: string;
}

export interface KeySourceSelection {
  readonly source: KeySource;
  readonly kind: KeySourceKind;
  /** Why this source was chosen, for `popgate token status`. */
  readonly reason: string;
  /** Set when the keyring was wanted but could not be used: what happened and what is used instead. */
  readonly note: string | undefined;
  /** Records the choice so that later runs use the same key (the CLI calls it after a login). */
  remember(): Promise<void>;
}

/** Paths of the key material under `dataDir`. */
export function keyPaths(dataDir: string): { keyFile: string; saltFile: string; record: string } {
  return {
    keyFile: join(dataDir, 'token.key'),
    saltFile: join(dataDir, 'passphrase.salt'),
    record: join(dataDir, 'key-source'),
  };
}

/** Parses a key source name (`keyring`, `file`, `passphrase`); `what` names where it came from. */
export function parseKeySourceKind(value: string, what: string): KeySourceKind {
  const kind = value.trim().toLowerCase();
  if ((KEY_SOURCE_KINDS as readonly string[]).includes(kind)) return kind as KeySourceKind;
  throw new ConfigError(
    'ERR_CONFIG_INVALID',
    `${what} must be one of ${KEY_SOURCE_KINDS.join(', ')} (got ${JSON.stringify(value.slice(0, 32))})`,
    { key: what },
  );
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** The kind recorded by an earlier login, or undefined. */
export async function readRecordedKeySource(dataDir: string): Promise<KeySourceKind | undefined> {
  const { record } = keyPaths(dataDir);
  let text: string;
  try {
    text = await readFile(record, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenStoreError('ERR_TOKEN_STORE_IO', `cannot read ${record}`);
  }
  const kind = text.trim();
  if (!(KEY_SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new TokenStoreError(
      'ERR_TOKEN_STORE_KEY',
      `${record} should name the key source (keyring, file or passphrase); fix or delete it`,
    );
  }
  return kind as KeySourceKind;
}

/** Chooses the key source; see the module comment for the order. */
export async function selectKeySource(options: KeySourceSelectionOptions): Promise<KeySourceSelection> {
  const paths = keyPaths(options.dataDir);
  const recorded = await readRecordedKeySource(options.dataDir);
  const make = (kind: KeySourceKind, source: KeySource, reason: string, note?: string): KeySourceSelection =>
    Object.freeze({
      source,
      kind,
      reason,
      note,
      remember: async () => {
        if ((await readRecordedKeySource(options.dataDir)) === kind) return;
        await ensurePrivateDir(options.dataDir);
        await writeFileAtomic(paths.record, `${kind}\n`);
      },
    });

  const keyFile = (reason: string, note?: string) =>
    make('file', new KeyFileSource(paths.keyFile), reason, note);

  const passphrase = async (reason: string, given: string | undefined) => {
    let value = given;
    if (value === undefined || value === '') {
      if (!options.askPassphrase) {
        throw new TokenStoreError(
          'ERR_TOKEN_STORE_KEY',
          'the token store is protected by a passphrase: set POPGATE_PASSPHRASE, or run popgate on a terminal to be asked for it',
        );
      }
      value = await options.askPassphrase({ confirm: !(await exists(paths.saltFile)) });
    }
    return make('passphrase', new PassphraseKeySource(value, paths.saltFile), reason);
  };

  const keyring = async (reason: string, required: ((why: string) => string) | undefined) => {
    const source = options.keyring;
    const probe = source
      ? await source.probe()
      : { usable: false as const, reason: options.keyringAbsentReason ?? 'no OS keyring on this system' };
    if (source && probe.usable) return make('keyring', source, reason);
    const why = probe.usable ? 'unknown error' : probe.reason;
    if (required !== undefined) throw new TokenStoreError('ERR_TOKEN_STORE_KEY', required(why));
    return keyFile(
      'the OS keyring is not usable',
      `the OS keyring is not usable (${why}); the token key is kept in the key file ${paths.keyFile} instead`,
    );
  };

  switch (options.force) {
    case 'passphrase':
      return passphrase('POPGATE_KEY_SOURCE=passphrase', options.passphrase);
    case 'file':
      return keyFile('POPGATE_KEY_SOURCE=file');
    case 'keyring':
      return keyring(
        'POPGATE_KEY_SOURCE=keyring',
        (why) => `POPGATE_KEY_SOURCE=keyring, but the OS keyring cannot be used: ${why}`,
      );
    case undefined:
      break;
  }
  if (options.passphrase !== undefined && options.passphrase !== '')
    return passphrase('POPGATE_PASSPHRASE is set', options.passphrase);
  switch (recorded) {
    case 'passphrase':
      return passphrase(`recorded in ${paths.record}`, undefined);
    case 'file':
      return keyFile(`recorded in ${paths.record}`);
    case 'keyring':
      return keyring(
        `recorded in ${paths.record}`,
        (why) =>
          `the token key is in the OS keyring (recorded in ${paths.record}), which cannot be used now (${why}); run popgate where the keyring is reachable and unlocked (your desktop session), or set POPGATE_KEY_SOURCE=file and log in again`,
      );
    case undefined:
      break;
  }
  if (await exists(paths.keyFile)) return keyFile(`the key file ${paths.keyFile} exists`);
  if (await exists(paths.saltFile)) return passphrase(`the salt file ${paths.saltFile} exists`, undefined);
  return keyring('the OS keyring is usable', undefined);
}
