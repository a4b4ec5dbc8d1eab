/**
 * TOP's cut (RFC 1939 §7): the header, the blank line that ends it, then `lines` lines of the
 * body. An async generator over the message stream, so leaving early destroys the source.
 * Works across chunk boundaries; the DotEncoder stuffs its output like RETR's.
 */
const LF = 0x0a;
const CR = 0x0d;

/** Yields the header and the first `lines` body lines of the CRLF message in `source`. */
export async function* topOf(source: AsyncIterable<Buffer>, lines: number): AsyncGenerator<Buffer> {
  let inHeader = true;
  let lineLength = 0; // octets of the current line, CR excluded
  let remaining = lines;
  for await (const chunk of source) {
    let i = 0;
    for (; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== LF) {
        if (byte !== CR) lineLength += 1;
        continue;
      }
      const blank = lineLength === 0;
      lineLength = 0;
      if (inHeader) {
        if (!blank) continue;
        inHeader = false;
        if (remaining === 0) break;
        continue;
      }
      remaining -= 1;
      if (remaining === 0) break;
    }
    if (i < chunk.length) {
      yield chunk.subarray(0, i + 1);
      return;
    }
    yield chunk;
  }
}
