// The answer writer is the one gate to the socket: an answer whose text holds CR, LF or NUL is
// refused whole (a typed error, nothing written, nothing marked answered), so the session can
// still answer -ERR [SYS/TEMP] instead of a half answer or an injected line.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import { AnswerWriter } from '../../src/server/answer-writer.ts';

function fakeSocket(): { socket: Socket; written: string[] } {
  const written: string[] = [];
  const socket = {
    destroyed: false,
    writable: true,
    writableLength: 0,
    writableNeedDrain: false,
    write(data: string | Buffer) {
      written.push(typeof data === 'string' ? data : data.toString('latin1'));
      return true;
    },
    cork() {},
    uncork() {},
  } as unknown as Socket;
  return { socket, written };
}

function writer(): { w: AnswerWriter; written: string[] } {
  const { socket, written } = fakeSocket();
  const w = new AnswerWriter(socket, {
    hasQueuedInput: () => false,
    closing: () => false,
    onStall() {},
    onRoom() {},
  });
  return { w, written };
}

const invalidArgument = (e: unknown) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT');

describe('AnswerWriter', () => {
  it('writes a status line and marks the command answered', () => {
    const { w, written } = writer();
    w.ok('hello', 'SYS/TEMP');
    assert.deepEqual(written, ['+OK [SYS/TEMP] hello\r\n']);
    assert.equal(w.answered, true);
  });

  it('refuses a status text holding LF: nothing written, not answered', () => {
    const { w, written } = writer();
    assert.throws(() => w.err('bad\r\n+OK injected'), invalidArgument);
    assert.deepEqual(written, []);
    assert.equal(w.answered, false);
  });

  it('refuses a multi-line answer with CR in one line: nothing written, not answered', () => {
    const { w, written } = writer();
    assert.throws(() => w.multiline('2 messages', ['1 10', '2 20\r.\r\n+OK']), invalidArgument);
    assert.deepEqual(written, []);
    assert.equal(w.answered, false);
  });

  it('refuses a continuation holding LF', () => {
    const { w, written } = writer();
    assert.throws(() => w.continuation('abc\n+OK'), invalidArgument);
    assert.deepEqual(written, []);
  });

  it('refuses a message status text holding CR before writing the body', async () => {
    const { w, written } = writer();
    await assert.rejects(w.message('10 octets\r', Buffer.from('body\r\n')), invalidArgument);
    assert.deepEqual(written, []);
    assert.equal(w.answered, false);
  });

  it('writes a whole message framed and dot-stuffed', async () => {
    const { w, written } = writer();
    assert.equal(await w.message('7 octets', Buffer.from('.a\r\nb\r\n')), 8);
    assert.deepEqual(written, ['+OK 7 octets\r\n..a\r\nb\r\n.\r\n']);
  });
});
