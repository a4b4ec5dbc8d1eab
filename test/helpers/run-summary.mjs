// Reads the closing counts (ℹ pass N, ℹ fail N, ...) from node's spec reporter as the output
// streams by. They come before the list of failures, which can be long and can arrive in the same
// chunk, so the output is read line by line (a partial line waits for its end) and the last value
// of each count is kept.
const COUNT = /^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)\r?$/;

/** A reader of the spec reporter's output: feed it every stdout chunk, then ask for the counts. */
export function createSummaryReader() {
  const decoder = new TextDecoder();
  const counts = new Map();
  let partial = '';
  const take = (line) => {
    const m = COUNT.exec(line);
    if (m) counts.set(m[1], Number(m[2]));
  };
  return {
    /** @param {Uint8Array} chunk */
    feed(chunk) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) take(line);
    },
    /** @param {string} label one of tests, pass, fail, cancelled, skipped, todo */
    count(label) {
      take(partial);
      return counts.get(label) ?? 0;
    },
  };
}
