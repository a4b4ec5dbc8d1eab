// Server-side answer formatting (RFC 1939 §3, RFC 5034 §4): a status text, a SASL continuation
// or a multi-line line holding CR, LF or NUL is refused with a typed error, never formatted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPopgateError } from '../../src/errors.ts';
import { formatMultiline } from '../../src/protocol/multiline.ts';
import { formatContinuation, formatStatusLine } from '../../src/protocol/response.ts';

const invalidArgument = (e: unknown) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT');
const withBreak = fc
  .tuple(fc.string(), fc.constantFrom('\r', '\n', '\0', '\r\n'), fc.string())
  .map(([a, bad, b]) => `${a}${bad}${b}`);

describe('formatStatusLine', () => {
  it('refuses CR, LF or NUL anywhere in the text', () => {
    fc.assert(
      fc.property(withBreak, fc.constantFrom('ok' as const, 'err' as const), (text, kind) => {
        assert.throws(() => formatStatusLine(kind, text), invalidArgument);
      }),
    );
  });
});

describe('formatContinuation', () => {
  it('formats an empty challenge as "+ "', () => {
    assert.equal(formatContinuation(''), '+ \r\n');
  });

  it('formats a base64 challenge after "+ "', () => {
    assert.equal(formatContinuation('eyJzdGF0dXMiOiI0MDEifQ=='), '+ eyJzdGF0dXMiOiI0MDEifQ==\r\n');
  });

  it('refuses a challenge holding CR, LF or NUL', () => {
    fc.assert(
      fc.property(withBreak, (data) => {
        assert.throws(() => formatContinuation(data), invalidArgument);
      }),
    );
  });
});

describe('formatMultiline', () => {
  it('dot-stuffs lines that start with a dot and ends with the terminator', () => {
    assert.equal(
      formatMultiline('2 messages', ['1 120', '.x', '..']),
      '+OK 2 messages\r\n1 120\r\n..x\r\n...\r\n.\r\n',
    );
  });

  it('answers an empty listing with the status line and the terminator only', () => {
    assert.equal(formatMultiline('0 messages', []), '+OK 0 messages\r\n.\r\n');
  });

  it('refuses a line holding CR, LF or NUL (no answer injection)', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), withBreak, (good, bad) => {
        assert.throws(() => formatMultiline('listing', [...good, bad]), invalidArgument);
      }),
    );
  });

  it('refuses a first line holding CR or LF', () => {
    assert.throws(() => formatMultiline('a\r\n+OK', ['x']), invalidArgument);
  });
});
