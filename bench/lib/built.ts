// Benches measure popgate as an installed package runs: the compiled dist/ (self-reference by
// package name), not the TypeScript sources through tsx, whose keep-names wrappers add work to
// every closure. A dist/ older than src/ would measure stale code, so that fails loudly.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Imports `popgate/<part>` from dist/ after checking that the build is newer than src/. */
export async function importBuilt<T>(part: string): Promise<T> {
  const built = join(ROOT, 'dist', part, 'index.js');
  let builtAt: number;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    throw new Error(`${built} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  if (newestMtime(join(ROOT, 'src')) > builtAt) {
    throw new Error(`dist/ is older than src/: run \`npm run build\` first (npm run bench does)`);
  }
  // A computed specifier: type-checking must not need dist/ (a fresh clone has none).
  const specifier = `popgate/${part}`;
  return (await import(specifier)) as T;
}
