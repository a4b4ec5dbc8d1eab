// Preloaded into a popgate child (`node --import ./lock-wait-probe.mjs bin/popgate.js ...`) so a
// test can see, as an event, the moment that child finds a token-store lock held by another
// process: an O_EXCL create of a `*.token.lock` file that fails with EEXIST. It writes one line,
// `lock-wait-probe: busy <path>`, to stderr the first time and changes nothing else: the child is
// the real CLI, and the probe only observes (node:module syncBuiltinESMExports makes the named
// ESM imports of node:fs/promises see the wrapper).

import { writeSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

const original = fsp.open;
let reported = false;
fsp.open = async function open(path, flags, mode) {
  try {
    return await original.call(this, path, flags, mode);
  } catch (error) {
    if (!reported && error?.code === 'EEXIST' && flags === 'wx' && String(path).endsWith('.token.lock')) {
      reported = true;
      writeSync(2, `lock-wait-probe: busy ${String(path)}\n`);
    }
    throw error;
  }
};
syncBuiltinESMExports();
