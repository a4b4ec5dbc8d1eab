// The whole-message framing of small RETR answers must produce exactly the bytes of the
// streaming DotEncoder (RFC 1939 §3) for every input, the edge cases named and random ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DotEncoder } from '../../src/protocol/dot-stuffing.ts';
import { frameMessage } from '../../src/protocol/frame.ts';

const STATUS = '+OK 42 octets\r\n';

function viaEncoder(body: Buffer): { bytes: Buffer; bodyBytes: number } {
  const encoder = new DotEncoder();
  const parts = encoder.push(body);
  const bodyBytes = parts.reduce((n, p) => n + p.length, 0);
  return { bytes: Buffer.concat([Buffer.from(STATUS), ...parts, ...encoder.end()]), bodyBytes };
}

describe('frameMessage', () => {
  const cases: [string, string, string][] = [
    ['an empty message', '', '.\r\n'],
    ['a CRLF message', 'a\r\nb\r\n', 'a\r\nb\r\n.\r\n'],
    ['lines starting with dots', '.a\r\n..b\r\n.\r\n', '..a\r\n...b\r\n..\r\n.\r\n'],
    ['bare LFs', 'a\nb\n.c\n', 'a\r\nb\r\n..c\r\n.\r\n'],
    ['no final line end', 'a\r\nlast', 'a\r\nlast\r\n.\r\n'],
    ['a final lone CR', 'a\r', 'a\r\n.\r\n'],
    ['a lone CR inside a line', 'a\rb\r\n', 'a\rb\r\n.\r\n'],
    ['a message that is one dot', '.', '..\r\n.\r\n'],
    ['a leading LF', '\n.x', '\r\n..x\r\n.\r\n'],
  ];
  for (const [name, body, wire] of cases) {
    it(`frames ${name} as the DotEncoder does`, () => {
      const framed = frameMessage(STATUS, Buffer.from(body, 'latin1'));
      assert.equal(framed.frame.toString('latin1'), STATUS + wire);
      const expected = viaEncoder(Buffer.from(body, 'latin1'));
      assert.ok(framed.frame.equals(expected.bytes));
      assert.equal(framed.bodyBytes, expected.bodyBytes);
    });
  }

  it('equals the DotEncoder on random bodies rich in dots, CR and LF', () => {
    const byte = fc.oneof(fc.constantFrom(0x2e, 0x0d, 0x0a, 0x2e, 0x0a), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 300 }), (bytes) => {
        const body = Buffer.from(bytes);
        const framed = frameMessage(STATUS, body);
        const expected = viaEncoder(body);
        assert.ok(framed.frame.equals(expected.bytes));
        assert.equal(framed.bodyBytes, expected.bodyBytes);
      }),
      { numRuns: 2000 },
    );
  });
});
