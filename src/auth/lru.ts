/**
 * A bounded cache with per-entry expiry and least-recently-used eviction. Keys are opaque strings
 * (the validator uses keyed hashes of tokens, never tokens).
 */
export class ExpiringLru<V> {
  readonly #max: number;
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value when present and not expired at `now` (ms); refreshes its recency. */
  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (ms); evicts the least recently used beyond the bound. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    this.#entries.delete(key);
    if (this.#max <= 0 || expiresAt <= now) return;
    this.#entries.set(key, { value, expiresAt });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
