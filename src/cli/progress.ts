/**
 * What `popgate fetch` shows while it works: a live bar per account on a terminal (messages and
 * bytes done of total, rate, ETA), plain log lines when output is not a terminal, NDJSON events
 * with `--json`, and only errors with `--quiet`. Every mode ends with one summary per account.
 */
import cliProgress from 'cli-progress';
import type { RunAccountReport } from '../fetch/run-account.ts';
import type { SyncProgress } from '../fetch/sync.ts';
import type { CliContext } from './context.ts';

export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface FetchReporter {
  progress(p: SyncProgress): void;
  done(report: RunAccountReport): void;
  failed(account: string, error: unknown, exitCode: number): void;
  /** A note (watch loop: next run, lock busy, LOGIN-DELAY). */
  note(message: string): void;
  close(): void;
}

/** `1.5 MB`, decimal units as mail clients show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
}

/** `ETA 12s`, or what happened at the end: `done`, `stopped` by a signal, `deleting`. */
function etaText(p: SyncProgress, eta: number): string {
  if (p.phase === 'done') return p.stopped ? 'stopped' : 'done';
  if (p.phase === 'deleting') return 'deleting';
  return `ETA ${formatEta(eta)}`;
}

function errorFields(error: unknown): { code: string; message: string } {
  const code = (error as { code?: unknown })?.code;
  return {
    code: typeof code === 'string' ? code : 'ERR_UNEXPECTED',
    message: error instanceof Error ? error.message : String(error),
  };
}

/** The one-line summary of an account's run. */
export function summaryLine(r: RunAccountReport): string {
  const parts = [
    // Server octets, as the progress totals count them (the files on disk are a little smaller).
    `${r.account}: fetched ${r.fetched} message${r.fetched === 1 ? '' : 's'} (${formatBytes(r.serverBytes)}) in ${(r.elapsedMs / 1000).toFixed(1)} s`,
  ];
  if (r.wanted === 0 && r.fetched === 0)
    parts[0] = `${r.account}: no new mail (${r.onServer} on the server) in ${(r.elapsedMs / 1000).toFixed(1)} s`;
  if (r.recovered > 0) parts.push(`${r.recovered} recovered from an interrupted run`);
  if (r.skippedTooLarge.length > 0) parts.push(`${r.skippedTooLarge.length} skipped as larger than max_size`);
  if (r.deferred > 0) parts.push(`${r.deferred} left for the next run (limit)`);
  if (r.failed.length > 0) parts.push(`${r.failed.length} FAILED to deliver (kept on the server)`);
  if (r.deleted > 0) parts.push(`${r.deleted} deleted on the server`);
  if (r.stopped) parts.push('stopped early by a signal');
  return parts.join('; ');
}

/**
 * The counts a display shows: those of the step that moves one message at a time (retrieval when
 * files are published in groups, delivery when a command takes each message), so the count moves
 * smoothly and the bytes belong to the same messages as the count.
 */
export function paceOf(p: SyncProgress): { messages: number; bytes: number } {
  return p.pace === 'delivery'
    ? { messages: p.messagesDone, bytes: p.bytesDelivered }
    : { messages: p.messagesReceived, bytes: p.bytesDone };
}

class Rate {
  readonly #start = Date.now();
  /** Byte rate and ETA of the pace-setting step. */
  eta(p: SyncProgress): { rate: number; eta: number } {
    const seconds = Math.max(0.001, (Date.now() - this.#start) / 1000);
    const { messages, bytes } = paceOf(p);
    const rate = bytes / seconds;
    const byBytes = rate > 0 ? (p.bytesTotal - bytes) / rate : Number.POSITIVE_INFINITY;
    const perMessage = messages / seconds;
    const byMessages = perMessage > 0 ? (p.messagesTotal - messages) / perMessage : Number.POSITIVE_INFINITY;
    return { rate, eta: p.messagesTotal === 0 ? 0 : Math.max(byBytes, byMessages) };
  }
}

/** The bar's line for a terminal this wide: what does not fit is left out, least useful first. */
export function barFormat(columns: number | undefined): { format: string; barsize: number } {
  const width = columns && columns > 0 ? columns : 80;
  if (width >= 100)
    return {
      format: '{account} |{bar}| {value}/{total} msgs | {bytes} of {totalBytes} | {rate}/s | {etaText}',
      barsize: 24,
    };
  if (width >= 80)
    return {
      format: '{account} |{bar}| {value}/{total} | {bytes}/{totalBytes} | {rate}/s | {etaText}',
      barsize: 12,
    };
  if (width >= 60)
    return { format: '{account} {value}/{total} {bytes}/{totalBytes} {rate}/s {etaText}', barsize: 0 };
  return { format: '{value}/{total} {bytes} {etaText}', barsize: 0 };
}

function writeFailures(ctx: CliContext, r: RunAccountReport): void {
  for (const f of r.failed)
    ctx.stderr.write(`popgate: ${r.account}: message ${f.uidl}: ${f.error.message} (${f.error.code})\n`);
}

class TtyReporter implements FetchReporter {
  readonly #ctx: CliContext;
  #multi: cliProgress.MultiBar | undefined;
  readonly #bars = new Map<string, { bar: cliProgress.SingleBar; rate: Rate; done: boolean }>();
  readonly #pending: string[] = [];

  constructor(ctx: CliContext) {
    this.#ctx = ctx;
  }

  #bar(): cliProgress.MultiBar {
    const { format, barsize } = barFormat(this.#ctx.stderr.columns);
    this.#multi ??= new cliProgress.MultiBar(
      {
        stream: this.#ctx.stderr,
        format,
        barsize,
        // cli-progress trims a line to the terminal; the format above is chosen to fit first.
        linewrap: false,
        hideCursor: true,
        clearOnComplete: false,
        fps: 8,
      },
      cliProgress.Presets.shades_classic,
    );
    return this.#multi;
  }

  progress(p: SyncProgress): void {
    // No bar for nothing to do: the summary says "no new mail".
    if (p.phase === 'listing' || p.messagesTotal === 0) return;
    let entry = this.#bars.get(p.account);
    if (!entry) {
      entry = { bar: this.#bar().create(p.messagesTotal, 0, {}), rate: new Rate(), done: false };
      this.#bars.set(p.account, entry);
    }
    if (entry.done) return;
    const { rate, eta } = entry.rate.eta(p);
    if (p.phase === 'done') entry.done = true;
    const pace = paceOf(p);
    entry.bar.setTotal(p.messagesTotal);
    entry.bar.update(p.phase === 'done' ? p.messagesDone : pace.messages, {
      account: p.account,
      bytes: formatBytes(p.phase === 'done' ? p.bytesDelivered : pace.bytes),
      totalBytes: formatBytes(p.bytesTotal),
      rate: formatBytes(Math.round(rate)),
      etaText: etaText(p, eta),
    });
  }

  done(r: RunAccountReport): void {
    this.#pending.push(`${summaryLine(r)}\n`);
    for (const f of r.failed)
      this.#pending.push(`popgate: ${r.account}: message ${f.uidl}: ${f.error.message} (${f.error.code})\n`);
    this.#settle(r.account);
  }

  failed(account: string, error: unknown): void {
    const { code, message } = errorFields(error);
    this.#pending.push(`popgate: ${account}: ${message} (${code})\n`);
    this.#settle(account);
  }

  note(message: string): void {
    if (this.#multi) this.#pending.push(`${message}\n`);
    else this.#ctx.stderr.write(`${message}\n`);
  }

  /** When every bar of this round has finished: stop the bars (they stay on screen), then print the summaries below them. */
  #settle(account: string): void {
    const entry = this.#bars.get(account);
    if (entry) entry.done = true;
    if ([...this.#bars.values()].some((e) => !e.done)) return;
    this.close();
  }

  close(): void {
    this.#multi?.stop();
    this.#multi = undefined;
    this.#bars.clear();
    for (const line of this.#pending.splice(0)) this.#ctx.stderr.write(line);
  }
}

class PlainReporter implements FetchReporter {
  readonly #ctx: CliContext;
  readonly #last = new Map<string, number>();
  readonly #rates = new Map<string, Rate>();

  constructor(ctx: CliContext) {
    this.#ctx = ctx;
  }

  progress(p: SyncProgress): void {
    if (p.phase !== 'fetching') return;
    let rate = this.#rates.get(p.account);
    if (!rate) {
      rate = new Rate();
      this.#rates.set(p.account, rate);
      if (p.messagesTotal > 0)
        this.#ctx.stdout.write(
          `${p.account}: ${p.messagesTotal} new message(s), ${formatBytes(p.bytesTotal)}\n`,
        );
    }
    const now = Date.now();
    const pace = paceOf(p);
    const complete = pace.messages === p.messagesTotal;
    if (pace.messages === 0 || complete || now - (this.#last.get(p.account) ?? 0) < 2000) return;
    this.#last.set(p.account, now);
    const { rate: r, eta } = rate.eta(p);
    this.#ctx.stdout.write(
      `${p.account}: ${pace.messages}/${p.messagesTotal} messages, ${formatBytes(pace.bytes)} of ${formatBytes(p.bytesTotal)}, ${formatBytes(Math.round(r))}/s, ETA ${formatEta(eta)}\n`,
    );
  }

  done(r: RunAccountReport): void {
    this.#ctx.stdout.write(`${summaryLine(r)}\n`);
    writeFailures(this.#ctx, r);
  }

  failed(account: string, error: unknown): void {
    const { code, message } = errorFields(error);
    this.#ctx.stderr.write(`popgate: ${account}: ${message} (${code})\n`);
  }

  note(message: string): void {
    this.#ctx.stdout.write(`${message}\n`);
  }

  close(): void {}
}

class QuietReporter extends PlainReporter {
  override progress(): void {}
  override done(r: RunAccountReport): void {
    // Only errors: failed deliveries are errors, a normal summary is not.
    if (r.failed.length > 0) super.done(r);
  }
  override note(): void {}
}

class JsonReporter implements FetchReporter {
  readonly #ctx: CliContext;
  readonly #last = new Map<string, number>();

  constructor(ctx: CliContext) {
    this.#ctx = ctx;
  }

  #emit(event: Record<string, unknown>): void {
    this.#ctx.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }

  progress(p: SyncProgress): void {
    const now = Date.now();
    const edge = p.phase !== 'fetching' || p.messagesDone === p.messagesTotal || p.messagesDone === 0;
    if (!edge && now - (this.#last.get(p.account) ?? 0) < 500) return;
    this.#last.set(p.account, now);
    this.#emit({ type: 'progress', ...p });
  }

  done(r: RunAccountReport): void {
    this.#emit({
      type: 'account',
      status: r.failed.length > 0 ? 'partial' : 'ok',
      account: r.account,
      onServer: r.onServer,
      fetched: r.fetched,
      bytes: r.bytes,
      serverBytes: r.serverBytes,
      deleted: r.deleted,
      recovered: r.recovered,
      deferred: r.deferred,
      stopped: r.stopped,
      elapsedMs: r.elapsedMs,
      skippedTooLarge: r.skippedTooLarge,
      failed: r.failed.map((f) => ({ uidl: f.uidl, code: f.error.code, message: f.error.message })),
    });
  }

  failed(account: string, error: unknown, exitCode: number): void {
    this.#emit({ type: 'account', status: 'error', account, exitCode, ...errorFields(error) });
  }

  note(message: string): void {
    this.#emit({ type: 'note', message });
  }

  close(): void {}
}

export function createReporter(ctx: CliContext, mode: ProgressMode): FetchReporter {
  switch (mode) {
    case 'tty':
      return new TtyReporter(ctx);
    case 'plain':
      return new PlainReporter(ctx);
    case 'json':
      return new JsonReporter(ctx);
    case 'quiet':
      return new QuietReporter(ctx);
  }
}
