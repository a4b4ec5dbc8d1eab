/**
 * Adapts popgate's {@link Pop3Client} (authenticated, TRANSACTION state) to the sync's
 * {@link MailboxSession}: UIDL and LIST pipelined, RETR pipelined through `retrieveMany`,
 * DELE pipelined, QUIT. On servers without UIDL (RFC 1939 §7 makes it optional) each message
 * gets a synthetic id from its Message-ID and size, read with `TOP n 0`.
 */
import { createHash } from 'node:crypto';
import type { Pop3Client } from '../client/pop3-client.ts';
import { Pop3Error } from '../errors.ts';
import type { MailboxSession, RetrievedMessage, ServerMessage } from './session.ts';
import { parseMessageId } from './sinks/transform.ts';

async function readAll(stream: NodeJS.ReadableStream, cap: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size < cap) parts.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return Buffer.concat(parts).subarray(0, cap);
}

/** `mid:` + SHA-256 of Message-ID and size (or of the whole header block when there is no Message-ID). */
export function syntheticId(header: Buffer, size: number): string {
  const text = header.toString('latin1');
  const messageId = parseMessageId(text.split(/\r?\n\r?\n/, 1)[0] ?? '');
  const basis =
    messageId === undefined ? `h:${createHash('sha256').update(header).digest('hex')}` : `m:${messageId}`;
  return `mid:${createHash('sha256').update(`${basis}\0${size}`).digest('hex').slice(0, 40)}`;
}

export function pop3Session(client: Pop3Client): MailboxSession {
  return {
    async listing(): Promise<readonly ServerMessage[]> {
      const wantUidl = client.capabilities?.uidl !== false;
      const listP = client.list();
      const uidlP = wantUidl ? client.uidl().catch((error: unknown) => error) : Promise.resolve(undefined);
      const [sizes, uids] = await Promise.all([listP, uidlP]);
      if (Array.isArray(uids)) {
        const byNumber = new Map(uids.map((u) => [u.number, u.uid]));
        return sizes.map((s) => {
          const uidl = byNumber.get(s.number);
          if (uidl === undefined)
            throw new Pop3Error('ERR_POP3_PROTOCOL', `UIDL did not list message ${s.number}`);
          return { number: s.number, size: s.size, uidl };
        });
      }
      // -ERR to UIDL (or not in CAPA): the second guard, Message-ID + size.
      if (uids !== undefined && !(uids instanceof Pop3Error && uids.code === 'ERR_POP3_ERR_RESPONSE'))
        throw uids;
      const headers = await Promise.all(
        sizes.map((s) => client.top(s.number, 0).then((stream) => readAll(stream, 64 * 1024))),
      );
      return sizes.map((s, i) => ({
        number: s.number,
        size: s.size,
        uidl: syntheticId(headers[i]!, s.size),
      }));
    },
    retrieveAll(numbers: readonly number[]): AsyncIterable<RetrievedMessage> {
      return client.retrieveMany(numbers);
    },
    async delete(numbers: readonly number[]): Promise<void> {
      await Promise.all(numbers.map((n) => client.delete(n)));
    },
    async quit(): Promise<void> {
      await client.quit();
    },
    destroy(): void {
      client.close();
    },
  };
}
