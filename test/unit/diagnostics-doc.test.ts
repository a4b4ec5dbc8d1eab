import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { renderDiagnosticsDoc } from '../../scripts/gen-diagnostics-doc.ts';

const src = new URL('../../src/', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? sourceFiles(full) : name.endsWith('.ts') ? [full] : [];
  });
}

/** The source without its comments (doc comments may name a channel). */
function codeOf(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

test('docs/diagnostics.md is generated from src/diagnostics.ts (run npm run docs:diagnostics)', () => {
  const committed = readFileSync(new URL('../../docs/diagnostics.md', import.meta.url), 'utf8');
  assert.equal(committed, renderDiagnosticsDoc());
});

test('channel names are written in src/diagnostics.ts only', () => {
  const elsewhere = sourceFiles(src)
    .filter((file) => relative(src, file) !== 'diagnostics.ts')
    .flatMap((file) =>
      [
        ...codeOf(readFileSync(file, 'utf8')).matchAll(/['"`](popgate:[a-z0-9]+(?::[a-z0-9._-]+)*)['"`]/g),
      ].map((m) => `${relative(src, file)}: ${m[1]}`),
    );
  assert.deepEqual(elsewhere, []);
});
