// Asks for the token store passphrase on the terminal without echo. A passphrase is never taken
// from the command line (it would sit in the shell history and in `ps` for every user to read):
// only from POPGATE_PASSPHRASE or from this prompt.

import type { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { TokenStoreError } from '../errors.ts';

/** A readable that may be a terminal (process.stdin is a tty.ReadStream on a terminal). */
export type PromptInput = NodeJS.ReadableStream & {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
  isRaw?: boolean;
};

const MAX_LENGTH = 1024;

/**
 * Writes `question` to `output` and reads one line from `input` without echoing it: the terminal
 * goes into raw mode for the duration, so the characters typed never reach the screen.
 * Backspace deletes, Ctrl-U clears, Enter ends, Ctrl-C or Ctrl-D on an empty line cancels.
 */
export function readHiddenLine(input: PromptInput, output: Writable, question: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const raw = input.isTTY === true && typeof input.setRawMode === 'function';
    const wasRaw = input.isRaw === true;
    const decoder = new StringDecoder('utf8');
    let chars: string[] = [];
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      if (raw) input.setRawMode?.(wasRaw);
      input.pause();
      output.write('\n');
      const value = chars.join('');
      chars = [];
      if (error) reject(error);
      else resolve(value);
    };
    const cancelled = (): Error =>
      new TokenStoreError('ERR_TOKEN_STORE_KEY', 'no passphrase was entered; nothing was changed');
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const all = Array.from(text);
      for (let i = 0; i < all.length; i++) {
        const ch = all[i] as string;
        if (ch === '\r' || ch === '\n') {
          // Typed ahead (a paste, or the answer to the next prompt): give the rest back.
          const rest = all.slice(ch === '\r' && all[i + 1] === '\n' ? i + 2 : i + 1).join('');
          finish(undefined);
          if (rest) input.unshift(Buffer.from(rest, 'utf8'));
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && chars.length === 0)) {
          finish(cancelled());
          return;
        }
        if (ch === '\u0004') {
          finish(undefined);
          return;
        }
        if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch === '\u0015') chars = [];
        else if (ch >= ' ') {
          if (chars.length >= MAX_LENGTH) {
            finish(
              new TokenStoreError('ERR_TOKEN_STORE_KEY', `a passphrase is at most ${MAX_LENGTH} characters`),
            );
            return;
          }
          chars.push(ch);
        }
      }
    };
    const onEnd = (): void => finish(chars.length > 0 ? undefined : cancelled());
    const onError = (): void => finish(cancelled());
    output.write(question);
    if (raw) input.setRawMode?.(true);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/**
 * Asks for the token store passphrase; with `confirm` (a new passphrase) asks twice and refuses a
 * mismatch. Prompts go to `output` (stderr), never stdout, so a pipe reading a token is not mixed
 * with them.
 */
export async function promptPassphrase(
  input: PromptInput,
  output: Writable,
  options: { readonly confirm: boolean },
): Promise<string> {
  if (options.confirm) {
    output.write('Choose a passphrase for the popgate token store (it is needed to read your tokens).\n');
  }
  const first = await readHiddenLine(input, output, 'Passphrase: ');
  if (first.length === 0) {
    throw new TokenStoreError('ERR_TOKEN_STORE_KEY', 'the passphrase is empty; nothing was changed');
  }
  if (options.confirm) {
    const second = await readHiddenLine(input, output, 'Repeat the passphrase: ');
    if (second !== first) {
      throw new TokenStoreError('ERR_TOKEN_STORE_KEY', 'the two passphrases differ; nothing was changed');
    }
  }
  return first;
}
