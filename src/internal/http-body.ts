/**
 * The one capped reader of an HTTP response body, for the OAuth client's fetch and the token
 * validator's discovery and introspection requests: an identity provider (or anything in the way)
 * must not be able to make popgate buffer an unbounded answer. Reads a WHATWG body or a Node
 * stream; past `limit` octets it stops reading, cancels the body and throws what `tooLarge` makes,
 * so each caller keeps its own error type and message.
 */

/** Reads all of `body` into one Buffer, or throws `tooLarge()` once it passes `limit` octets. */
export async function readCappedBody(
  body: AsyncIterable<Uint8Array> | null | undefined,
  limit: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early (the throw) cancels a WHATWG body and destroys a Node stream.
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
