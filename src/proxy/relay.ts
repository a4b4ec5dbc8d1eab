/**
 * The TRANSACTION commands, relayed through popgate's client (never raw bytes): each local
 * command is replayed with the client API and its answer rebuilt by the proxy's writer, so the
 * upstream can inject nothing and every line is bounded. RETR and TOP bodies stream: the client
 * dot-unstuffs the upstream's bytes with backpressure from the upstream socket, the writer
 * dot-stuffs them again and waits for 'drain' on the local socket. An upstream `-ERR` is passed
 * on with its response code and its text (capped, control characters removed); a lost upstream
 * ends the session with `-ERR [SYS/TEMP]`.
 */
import type { Pop3Client } from '../client/pop3-client.ts';
import { Pop3Error } from '../errors.ts';
import { capText } from '../protocol/response.ts';
import type { ProxyContext } from './context.ts';

/** A message number as RFC 1939 writes it: a positive decimal. */
function messageNumber(ctx: ProxyContext, arg: string): number | undefined {
  if (/^[1-9]\d{0,9}$/.test(arg)) {
    const n = Number(arg);
    if (Number.isSafeInteger(n) && n <= 2 ** 31 - 1) return n;
  }
  ctx.err('Invalid message number');
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

type Relay = (ctx: ProxyContext, client: Pop3Client, args: readonly string[]) => Promise<void>;

export const stat: Relay = async (ctx, client) => {
  const { count, size } = await client.stat();
  ctx.ok(`${count} ${size}`);
};

export const list: Relay = async (ctx, client, args) => {
  if (args[0] !== undefined) {
    const n = messageNumber(ctx, args[0]);
    if (n === undefined) return;
    const item = await client.listOne(n);
    ctx.ok(`${item.number} ${item.size}`);
    return;
  }
  const items = await client.list();
  ctx.multiline(
    `${items.length} messages`,
    items.map((i) => `${i.number} ${i.size}`),
  );
};

export const uidl: Relay = async (ctx, client, args) => {
  if (args[0] !== undefined) {
    const n = messageNumber(ctx, args[0]);
    if (n === undefined) return;
    const item = await client.uidlOne(n);
    ctx.ok(`${item.number} ${item.uid}`);
    return;
  }
  const items = await client.uidl();
  ctx.multiline(
    'unique-id listing follows',
    items.map((i) => `${i.number} ${i.uid}`),
  );
};

export const retr: Relay = async (ctx, client, args) => {
  const n = messageNumber(ctx, args[0]!);
  if (n === undefined) return;
  const body = await client.retrieve(n);
  ctx.stats.retr += 1;
  const bytes = await ctx.message('message follows', body);
  ctx.stats.bytesOut += bytes;
  ctx.shared.metrics?.bytesOut.inc(bytes);
};

export const top: Relay = async (ctx, client, args) => {
  const n = messageNumber(ctx, args[0]!);
  if (n === undefined) return;
  if (!/^\d{1,9}$/.test(args[1]!)) {
    ctx.err('Invalid line count');
    return;
  }
  const body = await client.top(n, Number(args[1]));
  ctx.stats.top += 1;
  const bytes = await ctx.message('top of message follows', body);
  ctx.stats.bytesOut += bytes;
  ctx.shared.metrics?.bytesOut.inc(bytes);
};

export const dele: Relay = async (ctx, client, args) => {
  const n = messageNumber(ctx, args[0]!);
  if (n === undefined) return;
  await client.delete(n);
  ctx.stats.dele += 1;
  ctx.ok(`message ${n} deleted`);
};

export const rset: Relay = async (ctx, client) => {
  await client.reset();
  ctx.ok('deletion marks removed');
};

export const noop: Relay = async (ctx, client) => {
  await client.noop();
  ctx.ok();
};

/** QUIT in TRANSACTION: the upstream commits the deletions (its UPDATE state), then both close. */
export const quit: Relay = async (ctx, client) => {
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
