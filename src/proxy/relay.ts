/**
 * The TRANSACTION commands, relayed through popgate's client (never raw bytes): each local
 * command is replayed with the client API and its answer rebuilt by the proxy's writer, so the
 * upstream can inject nothing and every line is bounded. RETR and TOP bodies stream: the client
 * dot-unstuffs the upstream's bytes with backpressure from the upstream socket, the writer
 * dot-stuffs them again and waits for 'drain' on the local socket. An upstream `-ERR` is passed
 * on with its response code and its text (capped, control characters removed); a lost upstream
 * ends the session with `-ERR [SYS/TEMP]`.
 *
 * Each relay has two steps: starting it sends the command upstream at once (the client queues and
 * pipelines it) and returns the step that answers it locally, run when the command's turn comes.
 * The session starts a window of pipelined local commands ahead (session.ts), so the upstream
 * works on RETR n+1 while RETR n's body is still being relayed; answers stay in order because the
 * client yields them in order and the session answers one command at a time. Starting writes
 * nothing to the local client: a refused argument is answered at its turn too.
 */
import type { Readable } from 'node:stream';
import type { Pop3Client } from '../client/pop3-client.ts';
import { Pop3Error } from '../errors.ts';
import { capText } from '../protocol/response.ts';
import type { ProxyContext } from './context.ts';

/** A message number as RFC 1939 writes it: a positive decimal. */
function messageNumber(arg: string): number | undefined {
  if (/^[1-9]\d{0,9}$/.test(arg)) {
    const n = Number(arg);
    if (Number.isSafeInteger(n) && n <= 2 ** 31 - 1) return n;
  }
  return undefined;
}

const PASSED_CODES = new Set(['SYS/TEMP', 'SYS/PERM', 'IN-USE', 'LOGIN-DELAY', 'AUTH']);

/**
 * Answers an error of a relayed command. An upstream `-ERR` is passed on (the session goes on);
 * anything else means the upstream is gone or broken: `-ERR [SYS/TEMP]` and the session ends.
 */
export function relayFailure(ctx: ProxyContext, error: unknown): void {
  if (error instanceof Pop3Error && error.serverText !== undefined && !ctx.upstreamBroken()) {
    const code = error.responseCode?.toUpperCase();
    const text = capText(error.serverText.replace(/[^\x20-\x7e]/g, '?'), 200) || 'the mail server refused';
    ctx.err(text, code !== undefined && PASSED_CODES.has(code) ? code : undefined);
    return;
  }
  ctx.err('popgate: lost the connection to the mail server; reconnect', 'SYS/TEMP');
  ctx.end('upstream-lost');
}

/** Answers a started relay locally, at its turn. */
export type Finish = (ctx: ProxyContext) => Promise<void> | void;
/** Sends a relayed command upstream now; the returned step answers it at its turn. */
export type Relay = (client: Pop3Client, args: readonly string[]) => Finish;

/** An upstream answer awaited later: its rejection is handled then, never reported as unhandled. */
function later<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

const invalidNumber: Finish = (ctx) => ctx.err('Invalid message number');

export const stat: Relay = (client) => {
  const answer = later(client.stat());
  return async (ctx) => {
    const { count, size } = await answer;
    ctx.ok(`${count} ${size}`);
  };
};

export const list: Relay = (client, args) => {
  if (args[0] !== undefined) {
    const n = messageNumber(args[0]);
    if (n === undefined) return invalidNumber;
    const answer = later(client.listOne(n));
    return async (ctx) => {
      const item = await answer;
      ctx.ok(`${item.number} ${item.size}`);
    };
  }
  const answer = later(client.list());
  return async (ctx) => {
    const items = await answer;
    ctx.multiline(
      `${items.length} messages`,
      items.map((i) => `${i.number} ${i.size}`),
    );
  };
};

export const uidl: Relay = (client, args) => {
  if (args[0] !== undefined) {
    const n = messageNumber(args[0]);
    if (n === undefined) return invalidNumber;
    const answer = later(client.uidlOne(n));
    return async (ctx) => {
      const item = await answer;
      ctx.ok(`${item.number} ${item.uid}`);
    };
  }
  const answer = later(client.uidl());
  return async (ctx) => {
    const items = await answer;
    ctx.multiline(
      'unique-id listing follows',
      items.map((i) => `${i.number} ${i.uid}`),
    );
  };
};

/** Relays a body: the client dot-unstuffs it, the writer stuffs it again, both with backpressure. */
async function relayBody(ctx: ProxyContext, first: string, body: Promise<Readable>) {
  const bytes = await ctx.message(first, await body);
  ctx.stats.bytesOut += bytes;
  ctx.shared.metrics?.bytesOut.inc(bytes);
}

export const retr: Relay = (client, args) => {
  const n = messageNumber(args[0]!);
  if (n === undefined) return invalidNumber;
  const body = later(client.retrieve(n));
  return async (ctx) => {
    await relayBody(ctx, 'message follows', body);
    ctx.stats.retr += 1;
  };
};

export const top: Relay = (client, args) => {
  const n = messageNumber(args[0]!);
  if (n === undefined) return invalidNumber;
  if (!/^\d{1,9}$/.test(args[1]!)) return (ctx) => ctx.err('Invalid line count');
  const body = later(client.top(n, Number(args[1])));
  return async (ctx) => {
    await relayBody(ctx, 'top of message follows', body);
    ctx.stats.top += 1;
  };
};

export const dele: Relay = (client, args) => {
  const n = messageNumber(args[0]!);
  if (n === undefined) return invalidNumber;
  const answer = later(client.delete(n));
  return async (ctx) => {
    await answer;
    ctx.stats.dele += 1;
    ctx.ok(`message ${n} deleted`);
  };
};

export const rset: Relay = (client) => {
  const answer = later(client.reset());
  return async (ctx) => {
    await answer;
    ctx.ok('deletion marks removed');
  };
};

export const noop: Relay = (client) => {
  const answer = later(client.noop());
  return async (ctx) => {
    await answer;
    ctx.ok();
  };
};

/**
 * QUIT in TRANSACTION: the upstream commits the deletions (its UPDATE state), then both close.
 * Never started ahead (commands.ts): it is sent only once every earlier answer was written, so a
 * local client that drops mid-session never has its deletions committed.
 */
export const quit: Relay = (client) => async (ctx) => {
  try {
    await client.quit();
  } catch (error) {
    if (error instanceof Pop3Error && error.serverText !== undefined) {
      ctx.err('popgate: the mail server could not remove every deleted message', 'SYS/TEMP');
      ctx.end('quit');
      return;
    }
    throw error;
  }
  ctx.ok('popgate: logging out');
  ctx.end('quit');
};
