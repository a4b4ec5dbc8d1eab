/**
 * What the connection and its two helpers (command-writer.ts, body-receiver.ts) share: the
 * record of one queued command (a "job"), the answers it resolves to, and the connection's
 * settings. Apart so the three modules name one shape, and every job is built here with the same
 * fields in the same order, which keeps V8 on one hidden class on the per-command path.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../observability/logger.ts';
import type { DotDecoder } from '../protocol/dot-stuffing.ts';
import type { Pop3Limits, Pop3Timeouts } from '../protocol/limits.ts';
import type { MultilineCollector } from '../protocol/multiline.ts';
import type { Pop3StatusResponse } from '../protocol/response.ts';

export interface ConnectionContext {
  host: string;
  port: number;
  limits: Pop3Limits;
  timeouts: Pop3Timeouts;
  logger: Logger;
  sizeCheck: 'strict' | 'off';
}

export type JobKind = 'status' | 'raw' | 'multi' | 'body';

export interface JobRequest {
  /** Keyword for messages and errors (never carries arguments). */
  verb: string;
  /** Bytes to write; undefined for the greeting. */
  line: Buffer | undefined;
  /** Redacted form of the line for logs and diagnostics. */
  logLine: string;
  kind: JobKind;
  signal?: AbortSignal | undefined;
  /** Written only when nothing else is in flight, and nothing follows until it is answered. */
  barrier?: boolean;
  /** STLS: detach from the socket right after the +OK and fail closed on buffered bytes. */
  upgrade?: boolean;
  /** QUIT: the session ends with its +OK; whatever the server sends after it is not read. */
  closes?: boolean;
  /** -ERR without a code means an authentication failure. */
  authenticating?: boolean;
  /** Body jobs: the size LIST announced, checked against the decoded octets. */
  expectedSize?: number | undefined;
}

export interface MultiResult {
  status: Pop3StatusResponse;
  lines: readonly string[];
}
export interface BodyResult {
  status: Pop3StatusResponse;
  stream: Readable;
}

/** How a queued command reports: an error, or undefined and its answer. */
export type JobCallback = (err: Error | undefined, value?: unknown) => void;

export interface Job {
  readonly verb: string;
  readonly line: Buffer | undefined;
  readonly logLine: string;
  readonly kind: JobKind;
  readonly signal: AbortSignal | undefined;
  readonly barrier: boolean;
  readonly upgrade: boolean;
  readonly closes: boolean;
  readonly authenticating: boolean;
  expectedSize: number | undefined;
  /** Octets of answer this job reserves in the pipeline's byte window (LIST size, or 0). */
  windowBytes: number;
  /** Called once with the answer or the error. */
  readonly done: JobCallback;
  settled: boolean;
  abandoned: boolean;
  phase: 'waiting' | 'sent' | 'lines' | 'body';
  collector: MultilineCollector | undefined;
  status: Pop3StatusResponse | undefined;
  decoder: DotDecoder | undefined;
  stream: Readable | undefined;
}

/** A new job in the 'waiting' phase. */
export function createJob(request: JobRequest, done: JobCallback): Job {
  // Every field set here, in one order: one object shape for all jobs.
  return {
    verb: request.verb,
    line: request.line,
    logLine: request.logLine,
    kind: request.kind,
    signal: request.signal,
    barrier: request.barrier === true,
    upgrade: request.upgrade === true,
    closes: request.closes === true,
    authenticating: request.authenticating === true,
    expectedSize: request.expectedSize,
    windowBytes: 0,
    done,
    settled: false,
    abandoned: false,
    phase: 'waiting',
    collector: undefined,
    status: undefined,
    decoder: undefined,
    stream: undefined,
  };
}
