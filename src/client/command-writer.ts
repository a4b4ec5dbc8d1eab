/**
 * The write side of the connection's pipeline (RFC 2449 §6.6): which waiting commands may be
 * written now (pipeline depth, the byte window of answers asked for, barriers), written to the
 * socket in one batch. Apart from the connection so that the refill policy, tuned by
 * measurement, reads on its own. One instance per connection; it works on the connection's own
 * queues (no copy or wrapper per command).
 */
import type net from 'node:net';
import { silentLogger } from '../observability/logger.ts';
import { commandChannel } from './diagnostics.ts';
import type { ConnectionContext, Job } from './job.ts';
import type { DeadlineTimer } from './job-watch.ts';

export class CommandWriter {
  /** Whether commands may be written before earlier answers arrive (CAPA PIPELINING). */
  pipelining = false;
  /** Sum of `windowBytes` over the in-flight jobs: the answers the server has been asked for. */
  inflightBytes = 0;
  readonly #ctx: ConnectionContext;
  /** False for the silent default logger: no log fields are built per command. */
  readonly #logs: boolean;
  readonly #waiting: Job[];
  readonly #inflight: Job[];
  readonly #deadline: DeadlineTimer<Job>;

  constructor(ctx: ConnectionContext, waiting: Job[], inflight: Job[], deadline: DeadlineTimer<Job>) {
    this.#ctx = ctx;
    this.#logs = ctx.logger !== silentLogger;
    this.#waiting = waiting;
    this.#inflight = inflight;
    this.#deadline = deadline;
  }

  /** Moves the commands the windows allow from the waiting queue into flight and writes them. */
  write(socket: net.Socket): void {
    const depth = this.pipelining ? this.#ctx.limits.maxPipelineDepth : 1;
    const budget = this.#ctx.limits.maxPipelineBytes;
    // Refill the pipe in batches: wait until a quarter of it (in commands and in expected answer
    // octets) is answered, then fill it up again in one write. Topping it up after every answer
    // cost one TLS record, one syscall and one wake-up of the server per message; waiting for
    // half of it to drain left the window a quarter emptier on average. Two commands may always
    // be in flight, so messages larger than the byte window still follow each other gaplessly.
    if (
      this.#inflight.length >= 2 &&
      (this.#inflight.length > depth - Math.max(1, depth >> 2) ||
        this.inflightBytes > budget - Math.floor(budget / 4))
    ) {
      return;
    }
    // One write per batch: a corked socket still queues one write request per command and hands
    // them to writev; one concatenated buffer is one request (the commands are a few octets).
    const batch: Buffer[] = [];
    let batchBytes = 0;
    while (this.#waiting.length > 0) {
      const job = this.#waiting[0]!;
      if (job.settled) {
        this.#waiting.shift(); // aborted before it was written
        continue;
      }
      const last = this.#inflight[this.#inflight.length - 1];
      if (this.#inflight.length >= depth) break;
      if (this.#inflight.length >= 2 && this.inflightBytes >= budget) break;
      if (last?.barrier || (job.barrier && this.#inflight.length > 0)) break;
      this.#waiting.shift();
      job.phase = 'sent';
      job.windowBytes = job.expectedSize ?? 0;
      this.inflightBytes += job.windowBytes;
      this.#inflight.push(job);
      batch.push(job.line!);
      batchBytes += job.line!.length;
      if (this.#logs) this.#ctx.logger.debug({ command: job.logLine }, 'pop3 command');
      if (commandChannel.hasSubscribers) {
        commandChannel.publish({ host: this.#ctx.host, port: this.#ctx.port, command: job.logLine });
      }
      if (this.#inflight.length === 1) this.#deadline.watch(job, this.#ctx.timeouts.command);
    }
    if (batch.length === 1) socket.write(batch[0]!);
    else if (batch.length > 1) socket.write(Buffer.concat(batch, batchBytes));
  }
}
