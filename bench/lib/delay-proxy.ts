// A TCP proxy on 127.0.0.1 that adds a fixed one-way delay to every chunk, both ways, for
// benchmarks that need real round trips (loopback's are ~30 µs). Bytes pass unchanged (TLS goes
// through end to end, so certificate checks are the client's as without the proxy), order is kept
// and bandwidth is not limited: each chunk is timestamped on arrival and released when due.
// Per direction the queue is FIFO with one due time per chunk; one high-resolution clock wakes the
// proxy when the earliest queued chunk of any direction is due (a worker thread sleeping in
// Atomics.wait, which takes fractional milliseconds: setTimeout rounds to whole ms of loop time,
// which turns a 0.5 ms delay into anything from 0 to 1.5 ms). No timer per chunk, no busy wait.
// A FIN is delayed like data; a reset or error tears down both sides at once.
//
// Run as its own process, so its CPU stays out of the measured client's event loop:
//   node --import tsx bench/lib/delay-proxy.ts --listen 0 --target 127.0.0.1:PORT --one-way-ms 0.5
// It prints the port it listens on as the first stdout line; when stdin ends (or the parent dies)
// it prints one JSON line of delay statistics (how late chunks were released) and exits.
// From a bench: `const proxy = await spawnDelayProxy({ target, oneWayMs })`, then `proxy.stop()`.

import { spawn } from 'node:child_process';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** How late chunks left the proxy after their due time (negative: early, within 20 µs). */
export interface DelayStats {
  readonly oneWayMs: number;
  readonly connections: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly lateMeanUs: number;
  readonly lateP50Us: number;
  readonly lateP99Us: number;
  readonly lateMaxUs: number;
  /** How early the clock set its alarm at the end, to land on due times (its learnt wake-up cost). */
  readonly leadUs: number;
}

export interface DelayProxy {
  readonly port: number;
  /** Ends the proxy process and returns its delay statistics (undefined if it printed none). */
  stop(): Promise<DelayStats | undefined>;
}

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Starts the proxy in a child process; rejects if it does not print its port within 10 s. */
export function spawnDelayProxy(options: {
  target: { host: string; port: number };
  oneWayMs: number;
}): Promise<DelayProxy> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      SELF,
      '--listen',
      '0',
      '--target',
      `${options.target.host}:${options.target.port}`,
      '--one-way-ms',
      String(options.oneWayMs),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  let partial = '';
  let onLine: (() => void) | undefined;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    onLine?.();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error('delay proxy did not start within 10 s'));
    }, 10_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`delay proxy exited (${code}) before listening`));
    });
    onLine = () => {
      const port = Number(lines[0]);
      if (!Number.isInteger(port) || port <= 0) return;
      clearTimeout(timer);
      onLine = undefined;
      resolve({
        port,
        async stop() {
          child.stdin.end();
          const deadline = setTimeout(kill, 5_000);
          const code = await exited;
          clearTimeout(deadline);
          const last = lines.slice(1).find((l) => l.startsWith('{'));
          if (code !== 0 || last === undefined) return undefined;
          return JSON.parse(last) as DelayStats;
        },
      });
    };
    onLine();
  });
}

// ---- the proxy process ----

/** Wakes the main thread at a monotonic time (ns) with sub-millisecond precision. */
const CLOCK_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const deadline = new BigInt64Array(workerData, 0, 1); // 0n: none, -1n: stop
const changes = new Int32Array(workerData, 8, 1);
for (;;) {
  const seen = Atomics.load(changes, 0);
  const due = Atomics.load(deadline, 0);
  if (due === -1n) break;
  if (due === 0n) { Atomics.wait(changes, 0, seen); continue; }
  const left = Number(due - process.hrtime.bigint()) / 1e6;
  if (left > 0) { Atomics.wait(changes, 0, seen, left); continue; }
  Atomics.compareExchange(deadline, 0, due, 0n);
  parentPort.postMessage(0);
}
`;

/** A chunk this close to its due time is released now rather than after one more wake-up. */
const TOLERANCE_NS = 20_000n;

/**
 * Calls `onTick` when the earliest armed due time comes. Waking a thread and then the event loop
 * takes 50-150 µs on a loaded machine, which would add to every delay: the clock learns that
 * overshoot (`lead`, a running average of how late its ticks land, at most 0.5 ms) and sets the
 * worker's alarm that much earlier, so ticks land on the due time on average.
 */
class Clock {
  private readonly shared = new SharedArrayBuffer(16);
  private readonly deadline = new BigInt64Array(this.shared, 0, 1);
  private readonly changes = new Int32Array(this.shared, 8, 1);
  private readonly worker: Worker;
  /** The due time the alarm is set for (0n: none). */
  private armed = 0n;
  private leadNs = 0;

  /** `maxLeadNs`: at most half the delay, so an alarm is never set before its chunk arrived. */
  constructor(
    private readonly maxLeadNs: number,
    onTick: (now: bigint) => void,
  ) {
    this.worker = new Worker(CLOCK_WORKER, { eval: true, workerData: this.shared });
    this.worker.on('message', () => {
      const now = process.hrtime.bigint();
      if (this.armed !== 0n) {
        // One sample moves the lead by at most 12.5 µs: a stall of the whole process (GC, a busy
        // core) is not a wake-up cost and must not drag the alarms early.
        const overshoot = Math.min(1e5, Math.max(-1e5, Number(now - this.armed)));
        this.leadNs = Math.min(this.maxLeadNs, Math.max(0, this.leadNs + overshoot / 8));
      }
      this.armed = 0n;
      onTick(now);
    });
    this.worker.on('error', (err) => {
      console.error(`delay proxy clock failed: ${err.message}`);
      process.exit(1);
    });
    this.worker.unref();
  }

  get leadUs(): number {
    return this.leadNs / 1e3;
  }

  /** Ticks at `due` unless already armed for an earlier time. */
  arm(due: bigint): void {
    if (this.armed !== 0n && this.armed <= due) return;
    this.armed = due;
    this.set(due - BigInt(Math.round(this.leadNs)));
  }

  stop(): void {
    this.set(-1n);
  }

  private set(value: bigint): void {
    Atomics.store(this.deadline, 0, value);
    Atomics.add(this.changes, 0, 1);
    Atomics.notify(this.changes, 0);
  }
}

const HISTOGRAM_US = 10; // bucket width
const HISTOGRAM_FROM_US = -1000; // first bucket: 1 ms or more early; last: 10 ms or more late
const histogram = new Float64Array(1101);
const totals = { connections: 0, chunks: 0, bytes: 0, lateSumUs: 0, lateMaxUs: 0 };

/** `ns` is signed: a chunk released within the tolerance before its due time counts as early. */
function recordLateness(ns: bigint, bytes: number): void {
  const us = Number(ns) / 1e3;
  totals.chunks++;
  totals.bytes += bytes;
  totals.lateSumUs += us;
  if (us > totals.lateMaxUs) totals.lateMaxUs = us;
  const bucket = Math.floor((us - HISTOGRAM_FROM_US) / HISTOGRAM_US);
  histogram[Math.min(histogram.length - 1, Math.max(0, bucket))]!++;
}

function percentileUs(p: number): number {
  const wanted = totals.chunks * p;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= wanted && seen > 0) return HISTOGRAM_FROM_US + (i + 0.5) * HISTOGRAM_US;
  }
  return 0;
}

/** One direction of one connection: chunks in arrival order, each with its due time. */
class DelayLine {
  private readonly queue: Array<{ due: bigint; chunk: Buffer | null }> = [];
  private head = 0;

  constructor(
    private readonly to: Socket,
    private readonly delayNs: bigint,
    private readonly clock: Clock,
  ) {}

  /** `null` is the FIN: the destination is ended once everything before it is released. */
  push(chunk: Buffer | null): void {
    const due = process.hrtime.bigint() + this.delayNs;
    this.queue.push({ due, chunk });
    if (this.queue.length - this.head === 1) this.clock.arm(due);
  }

  /** Releases every due chunk in one corked write; returns the next due time (0n: empty). */
  release(now: bigint): bigint {
    if (this.head === this.queue.length) return 0n;
    this.to.cork();
    while (this.head < this.queue.length && this.queue[this.head]!.due <= now + TOLERANCE_NS) {
      const { due, chunk } = this.queue[this.head++]!;
      if (chunk === null) this.to.end();
      else {
        recordLateness(now - due, chunk.length);
        if (!this.to.destroyed) this.to.write(chunk);
      }
    }
    this.to.uncork();
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      return 0n;
    }
    if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return this.queue[this.head]!.due;
  }
}

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  const value = i > 0 ? process.argv[i + 1] : undefined;
  if (value === undefined) throw new Error(`delay-proxy: ${name} is required`);
  return value;
}

function runProxy(): void {
  const listenPort = Number(arg('--listen'));
  const [targetHost, targetPort] = arg('--target').split(/:(?=\d+$)/);
  const oneWayMs = Number(arg('--one-way-ms'));
  if (!targetHost || !Number(targetPort) || !(oneWayMs >= 0) || !(listenPort >= 0)) {
    throw new Error('usage: delay-proxy --listen PORT --target HOST:PORT --one-way-ms MS');
  }
  const delayNs = BigInt(Math.round(oneWayMs * 1e6));
  const lines = new Set<DelayLine>();
  const clock = new Clock(Math.min(5e5, Number(delayNs) / 2), (now) => {
    let next = 0n;
    for (const line of lines) {
      const due = line.release(now);
      if (due !== 0n && (next === 0n || due < next)) next = due;
    }
    if (next !== 0n) clock.arm(next);
  });

  const pipeDelayed = (from: Socket, to: Socket): DelayLine => {
    const line = new DelayLine(to, delayNs, clock);
    lines.add(line);
    let paused = false;
    from.on('data', (chunk: Buffer) => {
      line.push(chunk);
      // The destination's backpressure pauses the source (as a TCP window would); no other limit.
      if (to.writableNeedDrain && !paused) {
        paused = true;
        from.pause();
        to.once('drain', () => {
          paused = false;
          from.resume();
        });
      }
    });
    from.on('end', () => line.push(null));
    to.on('close', () => lines.delete(line));
    return line;
  };

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    totals.connections++;
    const upstream = tcpConnect({
      host: targetHost,
      port: Number(targetPort),
      allowHalfOpen: true,
      noDelay: true,
    });
    client.setNoDelay(true);
    const teardown = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    // A side that closed without a clean end (reset) closes the other at once.
    client.on('close', (hadError) => hadError && teardown());
    upstream.on('close', (hadError) => hadError && teardown());
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });
  server.listen(listenPort, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  // The parent ends stdin (or dies): report and exit.
  process.stdin.resume();
  process.stdin.on('end', () => {
    clock.stop();
    const stats: DelayStats = {
      oneWayMs,
      connections: totals.connections,
      chunks: totals.chunks,
      bytes: totals.bytes,
      lateMeanUs: totals.chunks ? totals.lateSumUs / totals.chunks : 0,
      lateP50Us: percentileUs(0.5),
      lateP99Us: percentileUs(0.99),
      lateMaxUs: totals.lateMaxUs,
      leadUs: clock.leadUs,
    };
    process.stdout.write(`${JSON.stringify(stats)}\n`, () => process.exit(0));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) runProxy();
