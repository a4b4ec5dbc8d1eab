/**
 * The one options checker behind every options resolver (client, server, validator, Maildir
 * store) and the config loader (architecture.md R6, undici's habit): an unknown key fails naming it, with
 * the closest known key as a "did you mean" hint; a bad value fails naming the key and what it
 * must be. Every failure is a {@link ConfigError} carrying `key`; each resolver keeps its own
 * wording and code through an {@link OptionsSubject}.
 */
import { ConfigError, type ErrorCode } from '../errors.ts';

/** How one resolver words its failures. */
export interface OptionsSubject {
  /** The message for a bad value, e.g. `Pop3Client option "port" must be ...`. */
  readonly invalid: (key: string, what: string) => string;
  /** The message for an unknown key; `hint` is `` (did you mean "x"?)`` or empty. */
  readonly unknown: (key: string, hint: string, known: readonly string[]) => string;
  /** Codes; by default ERR_CONFIG_INVALID and ERR_CONFIG_UNKNOWN_KEY. */
  readonly invalidCode?: ErrorCode;
  readonly unknownCode?: ErrorCode;
}

/** The closest known key within two edits, to turn a typo into a hint. */
export function suggestKey(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** ` (did you mean "x"?)` for the closest known key, or an empty string. */
export function didYouMean(key: string, known: Iterable<string>): string {
  const hint = suggestKey(key, known);
  return hint === undefined ? '' : ` (did you mean "${hint}"?)`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** Checks option values for one resolver; every method throws a ConfigError naming the key. */
export class OptionsChecker {
  readonly #subject: OptionsSubject;

  constructor(subject: OptionsSubject) {
    this.#subject = subject;
  }

  /** The error for a bad value of `key` (for checks this class does not have). */
  invalid(key: string, what: string): ConfigError {
    return new ConfigError(
      this.#subject.invalidCode ?? 'ERR_CONFIG_INVALID',
      this.#subject.invalid(key, what),
      {
        key,
      },
    );
  }

  /** Throws for the first key of `value` not in `known`; `prefix` makes nested keys `a.b`. */
  knownKeys(value: object, known: Iterable<string>, prefix = ''): void {
    const list = [...known];
    for (const name of Object.keys(value)) {
      if (list.includes(name)) continue;
      const key = prefix ? `${prefix}.${name}` : name;
      throw new ConfigError(
        this.#subject.unknownCode ?? 'ERR_CONFIG_UNKNOWN_KEY',
        this.#subject.unknown(key, didYouMean(name, list), list),
        { key },
      );
    }
  }

  /** An integer from `min` to `max`; `fallback` when undefined. */
  integer(
    value: unknown,
    key: string,
    range: { min: number; max?: number; what?: string },
    fallback?: number,
  ): number {
    const v = value === undefined ? fallback : value;
    const max = range.max ?? Number.MAX_SAFE_INTEGER;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < range.min || v > max) {
      throw this.invalid(
        key,
        range.what ??
          (range.max === undefined
            ? `must be an integer >= ${range.min}`
            : `must be an integer from ${range.min} to ${max}`),
      );
    }
    return v;
  }

  /** `true` or `false`; `fallback` when undefined. */
  boolean(value: unknown, key: string, fallback: boolean, what = 'must be true or false'): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') throw this.invalid(key, what);
    return value;
  }

  /** One of `choices`; `fallback` when undefined. */
  oneOf<T extends string>(value: unknown, key: string, choices: readonly T[], fallback: T): T {
    const v = value === undefined ? fallback : value;
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      const listed = choices.map((c) => `"${c}"`);
      const last = listed.pop();
      throw this.invalid(key, `must be ${listed.length > 0 ? `${listed.join(', ')} or ${last}` : last}`);
    }
    return v as T;
  }

  /** A non-empty string of at most `maxLength` characters, without control characters. */
  string(value: unknown, key: string, options: { maxLength?: number; what?: string } = {}): string {
    if (
      typeof value !== 'string' ||
      value.length === 0 ||
      value.length > (options.maxLength ?? 2048) ||
      /[\0-\x1f\x7f]/.test(value)
    ) {
      throw this.invalid(key, options.what ?? 'must be a non-empty string without control characters');
    }
    return value;
  }
}
