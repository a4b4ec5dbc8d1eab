/**
 * App passwords for the proxy (docs/proxy.md): random passwords a legacy POP3 client sends
 * instead of the mailbox password, one per device, each with a label, each revocable alone.
 * Only a scrypt hash is stored (parameters and salt beside it), in one JSON file of mode 0600
 * in a 0700 directory, replaced atomically under a lock (internal/durable-fs.ts,
 * internal/lock-file.ts). The file has nothing to do with the token store or its key: a wrong
 * password can neither unlock nor damage tokens.
 *
 * A password is 24 base32 characters (120 random bits), shown as six groups of four. Its first
 * four characters are the entry's public id, so a login runs exactly one scrypt; an unknown id
 * runs a dummy scrypt so the time taken does not tell ids apart. Dashes, spaces and case are
 * ignored. The file is read on every verify, so a revoked password stops working at once.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmod, lstat, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PopgateError } from '../errors.ts';
import { writeFileAtomic } from '../internal/durable-fs.ts';
import { withLock } from '../internal/lock-file.ts';

/** scrypt cost: 8 MiB, ~17 ms per verify on a loaded 2-core machine (docs/proxy.md). */
export const SCRYPT_PARAMS = Object.freeze({ N: 2 ** 13, r: 8, p: 1 });
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const PASSWORD_LENGTH = 24;
const ID_LENGTH = 4;
/** RFC 4648 base32, lower case: no 0/1/8/9 to mistake for O/I/B/g. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const MAX_PER_ACCOUNT = 50;
const LABEL = /^[\p{L}\p{N} ._@+-]{1,64}$/u;

/** What `list` shows of an app password: never the hash. */
export interface AppPasswordInfo {
  readonly id: string;
  readonly account: string;
  readonly label: string;
  /** ISO 8601. */
  readonly created: string;
}

interface StoredEntry extends AppPasswordInfo {
  readonly kdf: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: string;
  readonly hash: string;
}

interface FileShape {
  readonly version: 1;
  readonly passwords: readonly StoredEntry[];
}

/** A freshly created app password: `password` is shown once and never stored. */
export interface CreatedAppPassword extends AppPasswordInfo {
  /** The password, grouped `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`. A secret. */
  readonly password: string;
}

function fileError(message: string, cause?: unknown): PopgateError {
  return new PopgateError('ERR_PROXY_PASSWORD_FILE', message, cause === undefined ? {} : { cause });
}

function derive(
  password: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password,
      salt,
      KEY_LENGTH,
      { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** Dashes, spaces and case do not matter; anything else makes the password invalid. */
export function normalizeAppPassword(input: string): string | undefined {
  const clean = input.replace(/[-\s]/g, '').toLowerCase();
  if (clean.length !== PASSWORD_LENGTH) return undefined;
  for (const c of clean) if (!ALPHABET.includes(c)) return undefined;
  return clean;
}

function randomPassword(): string {
  // 24 characters x 5 bits from 15 random bytes: exactly 120 bits, no modulo bias.
  const bytes = randomBytes(15);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = 0; i < PASSWORD_LENGTH; i++) {
    out = ALPHABET[Number(bits & 31n)]! + out;
    bits >>= 5n;
  }
  return out;
}

function group(password: string): string {
  return password.match(/.{4}/g)!.join('-');
}

function isEntry(value: unknown): value is StoredEntry {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    typeof e.account === 'string' &&
    typeof e.label === 'string' &&
    typeof e.created === 'string' &&
    e.kdf === 'scrypt' &&
    // Bounded so that an edited file cannot make one verify take minutes or gigabytes.
    [e.N, e.r, e.p].every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0) &&
    (e.N as number) <= 2 ** 20 &&
    (e.r as number) <= 32 &&
    (e.p as number) <= 16 &&
    typeof e.salt === 'string' &&
    typeof e.hash === 'string'
  );
}

export class AppPasswordStore {
  readonly #file: string;
  readonly #now: () => Date;
  /** A fixed dummy entry: unknown ids cost one scrypt too. */
  readonly #dummySalt = randomBytes(SALT_LENGTH);

  constructor(options: { file: string; now?: () => Date }) {
    this.#file = options.file;
    this.#now = options.now ?? (() => new Date());
  }

  get file(): string {
    return this.#file;
  }

  /** Creates an app password for `account`; the returned password is shown once. */
  async add(account: string, label = 'default'): Promise<CreatedAppPassword> {
    if (!LABEL.test(label)) {
      throw new PopgateError('ERR_PROXY_CONFIG', 'a label is 1 to 64 letters, digits, spaces or . _ @ + -');
    }
    return this.#update(async (entries) => {
      const mine = entries.filter((e) => e.account === account);
      if (mine.length >= MAX_PER_ACCOUNT) {
        throw new PopgateError(
          'ERR_PROXY_CONFIG',
          `account ${account} already has ${MAX_PER_ACCOUNT} app passwords; revoke some first`,
        );
      }
      let password = randomPassword();
      // The id must be unique per account: draw again on the rare collision.
      while (mine.some((e) => e.id === password.slice(0, ID_LENGTH))) password = randomPassword();
      const salt = randomBytes(SALT_LENGTH);
      const hash = await derive(password, salt, SCRYPT_PARAMS);
      const entry: StoredEntry = {
        id: password.slice(0, ID_LENGTH),
        account,
        label,
        created: this.#now().toISOString(),
        kdf: 'scrypt',
        ...SCRYPT_PARAMS,
        salt: salt.toString('base64'),
        hash: hash.toString('base64'),
      };
      const info = publicInfo(entry);
      return { entries: [...entries, entry], result: { ...info, password: group(password) } };
    });
  }

  /** The app passwords (of one account, or all), without hashes. */
  async list(account?: string): Promise<AppPasswordInfo[]> {
    const entries = await this.#read();
    return entries.filter((e) => account === undefined || e.account === account).map(publicInfo);
  }

  /** Removes the account's app passwords whose id or label is `which`; returns what was removed. */
  async revoke(account: string, which: string): Promise<AppPasswordInfo[]> {
    return this.#update(async (entries) => {
      const id = which.replace(/[-\s]/g, '').toLowerCase();
      const gone = entries.filter((e) => e.account === account && (e.id === id || e.label === which));
      if (gone.length === 0) {
        throw new PopgateError(
          'ERR_PROXY_PASSWORD_UNKNOWN',
          `account ${account} has no app password with id or label "${which.slice(0, 64)}"; see popgate proxy passwords list --account ${account}`,
        );
      }
      return { entries: entries.filter((e) => !gone.includes(e)), result: gone.map(publicInfo) };
    });
  }

  /**
   * Checks `password` for `account`: the matching entry's public info, or undefined. Reads the
   * file each time (a revocation applies to the next login). Always runs exactly one scrypt.
   */
  async verify(account: string | undefined, password: string): Promise<AppPasswordInfo | undefined> {
    const clean = normalizeAppPassword(password);
    const entries = await this.#read();
    const entry =
      clean === undefined || account === undefined
        ? undefined
        : entries.find((e) => e.account === account && e.id === clean.slice(0, ID_LENGTH));
    if (entry === undefined) {
      await derive(clean ?? 'x', this.#dummySalt, SCRYPT_PARAMS);
      return undefined;
    }
    const expected = Buffer.from(entry.hash, 'base64');
    const actual = await derive(clean!, Buffer.from(entry.salt, 'base64'), entry);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
    return publicInfo(entry);
  }

  async #read(): Promise<StoredEntry[]> {
    let text: string;
    try {
      const info = await lstat(this.#file);
      if (!info.isFile()) throw fileError(`${this.#file} is not a regular file`);
      if ((info.mode & 0o077) !== 0) {
        throw fileError(
          `${this.#file} is readable by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${this.#file}`,
        );
      }
      text = await readFile(this.#file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      if (error instanceof PopgateError) throw error;
      throw fileError(
        `cannot read ${this.#file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        error,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw fileError(
        `${this.#file} is not valid JSON; restore it or remove it and add passwords again`,
        error,
      );
    }
    const shape = parsed as Partial<FileShape>;
    if (shape?.version !== 1 || !Array.isArray(shape.passwords) || !shape.passwords.every(isEntry)) {
      throw fileError(`${this.#file} is not an app-password file of version 1`);
    }
    return [...shape.passwords];
  }

  async #update<T>(
    change: (entries: StoredEntry[]) => Promise<{ entries: StoredEntry[]; result: T }>,
  ): Promise<T> {
    const dir = dirname(this.#file);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    } catch (error) {
      throw fileError(`cannot create ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, error);
    }
    const done = await withLock(`${this.#file}.lock`, async () => {
      const { entries, result } = await change(await this.#read());
      const shape: FileShape = { version: 1, passwords: entries };
      try {
        await writeFileAtomic(this.#file, `${JSON.stringify(shape, null, 2)}\n`, 0o600);
      } catch (error) {
        throw fileError(
          `cannot write ${this.#file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          error,
        );
      }
      return result;
    });
    if (done === undefined) throw fileError(`another process holds ${this.#file}.lock; try again`);
    return done.value;
  }
}

function publicInfo(entry: StoredEntry): AppPasswordInfo {
  return Object.freeze({ id: entry.id, account: entry.account, label: entry.label, created: entry.created });
}
