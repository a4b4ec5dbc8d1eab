// The passphrase prompt fed a stream that claims to be a terminal: raw mode (no echo) while
// reading and restored after, line editing, cancel, and the confirmation of a new passphrase.
// The same prompt on a real terminal (tmux) is test/interop/oauth-passphrase-tty.test.ts.
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { promptPassphrase, readHiddenLine } from '../../src/cli/passphrase-prompt.ts';
import { isPopgateError } from '../../src/errors.ts';

class FakeTty extends PassThrough {
  isTTY = true;
  isRaw = false;
  rawChanges: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.isRaw = mode;
    this.rawChanges.push(mode);
    return this;
  }
}

class Screen extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

describe('passphrase prompt', () => {
  test('reads a line in raw mode, echoes nothing, and restores the terminal', async () => {
    const input = new FakeTty();
    const screen = new Screen();
    const line = readHiddenLine(input, screen, 'Passphrase: ');
    assert.equal(input.isRaw, true);
    input.write('hunter2-correct');
    input.write('\r');
    assert.equal(await line, 'hunter2-correct');
    assert.equal(input.isRaw, false);
    assert.deepEqual(input.rawChanges, [true, false]);
    assert.equal(screen.text, 'Passphrase: \n');
  });

  test('backspace deletes a character and Ctrl-U clears the line', async () => {
    const input = new FakeTty();
    const line = readHiddenLine(input, new Screen(), '? ');
    input.write('wrong\u0015rightt\u007f\r');
    assert.equal(await line, 'right');
  });

  test('Ctrl-C cancels with a key error and leaves the terminal as it was', async () => {
    const input = new FakeTty();
    const line = readHiddenLine(input, new Screen(), '? ');
    input.write('abc\u0003');
    await assert.rejects(line, (error: unknown) => isPopgateError(error, 'ERR_TOKEN_STORE_KEY'));
    assert.equal(input.isRaw, false);
  });

  test('a new passphrase is asked twice; typed-ahead answers are kept for the second prompt', async () => {
    const input = new FakeTty();
    const screen = new Screen();
    const answer = promptPassphrase(input, screen, { confirm: true });
    input.write('tide pool lantern\rtide pool lantern\r');
    assert.equal(await answer, 'tide pool lantern');
    assert.match(screen.text, /Passphrase: \nRepeat the passphrase: \n$/);
    assert.ok(!screen.text.includes('lantern'));
  });

  test('two different answers are refused and nothing is returned', async () => {
    const input = new FakeTty();
    const answer = promptPassphrase(input, new Screen(), { confirm: true });
    input.write('first answer\r');
    setImmediate(() => input.write('second answer\r'));
    await assert.rejects(answer, (error: unknown) => {
      assert.ok(isPopgateError(error, 'ERR_TOKEN_STORE_KEY'));
      assert.match((error as Error).message, /the two passphrases differ/);
      assert.ok(!(error as Error).message.includes('answer'));
      return true;
    });
  });

  test('an empty passphrase is refused', async () => {
    const input = new FakeTty();
    const answer = promptPassphrase(input, new Screen(), { confirm: false });
    input.write('\r');
    await assert.rejects(answer, /passphrase is empty/);
  });

  test('a stream that ends mid-line gives the characters read so far', async () => {
    const input = new PassThrough();
    const line = readHiddenLine(input, new Screen(), '? ');
    input.end('from a pipe');
    assert.equal(await line, 'from a pipe');
  });
});
