/**
 * Per-job bookkeeping for the connection that stays O(1) per command however many commands are
 * queued: one abort listener per signal (not one per job) and one lazily re-armed timer for the
 * head of the pipe (not one setTimeout/clearTimeout pair per answer).
 *
 * Why: `retrieveMany` queues thousands of RETRs under one AbortSignal. EventTarget checks
 * for a duplicate listener on every addEventListener, so one listener per job cost O(n²)
 * for a batch (measured: ~15 % of the client's CPU on 2,000 messages). One
 * timer per answer was another few per cent.
 */

/** Something that an abort of its signal must end. */
export interface Abortable {
  readonly signal?: AbortSignal | undefined;
}

/** Maps each AbortSignal to the jobs that use it, with a single listener per signal. */
export class AbortRegistry<J extends Abortable> {
  readonly #bySignal = new Map<AbortSignal, { jobs: Set<J>; listener: () => void }>();
  readonly #onAbort: (job: J) => void;

  constructor(onAbort: (job: J) => void) {
    this.#onAbort = onAbort;
  }

  add(job: J): void {
    const signal = job.signal;
    if (!signal) return;
    let entry = this.#bySignal.get(signal);
    if (!entry) {
      const jobs = new Set<J>();
      const listener = () => {
        this.#bySignal.delete(signal);
        // Oldest first: an aborted head is handled before the ones queued behind it.
        for (const j of jobs) this.#onAbort(j);
        jobs.clear();
      };
      entry = { jobs, listener };
      this.#bySignal.set(signal, entry);
      signal.addEventListener('abort', listener, { once: true });
    }
    entry.jobs.add(job);
  }

  delete(job: J): void {
    const signal = job.signal;
    if (!signal) return;
    const entry = this.#bySignal.get(signal);
    if (!entry?.jobs.delete(job) || entry.jobs.size > 0) return;
    signal.removeEventListener('abort', entry.listener);
    this.#bySignal.delete(signal);
  }

  clear(): void {
    for (const [signal, entry] of this.#bySignal) signal.removeEventListener('abort', entry.listener);
    this.#bySignal.clear();
  }
}

/**
 * Watches one deadline at a time (the head of the pipe). Moving the deadline only records it;
 * the single timer re-arms itself for the remainder when it fires early.
 */
export class DeadlineTimer<J> {
  readonly #onExpire: (job: J, ms: number) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #firesAt = 0;
  #job: J | undefined;
  #deadline = 0;
  #ms = 0;

  constructor(onExpire: (job: J, ms: number) => void, now: () => number = () => performance.now()) {
    this.#onExpire = onExpire;
    this.#now = now;
  }

  /** Fails `job` unless it is unwatched within `ms`. Replaces the job watched before. */
  watch(job: J, ms: number): void {
    const now = this.#now();
    this.#job = job;
    this.#ms = ms;
    this.#deadline = now + ms;
    if (this.#timer === undefined || this.#firesAt > this.#deadline) this.#arm(ms, now);
  }

  unwatch(job: J): void {
    if (this.#job === job) this.#job = undefined;
  }

  /** Stops the timer for good (connection closed). */
  stop(): void {
    this.#job = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number, now: number): void {
    clearTimeout(this.#timer);
    this.#firesAt = now + ms;
    this.#timer = setTimeout(() => this.#fire(), ms);
  }

  #fire(): void {
    this.#timer = undefined;
    const job = this.#job;
    if (job === undefined) return;
    const now = this.#now();
    const left = this.#deadline - now;
    if (left > 0) {
      this.#arm(Math.ceil(left), now);
      return;
    }
    this.#job = undefined;
    this.#onExpire(job, this.#ms);
  }
}
