// The package ships the product, not its dev tools (issue 10): the demo and the oidc-provider
// authorization server live in dev/, which nothing in src/ imports and nothing publishes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { docContext } from '../../src/cli/doc-context.ts';
import { buildProgram } from '../../src/cli/main.ts';

const root = resolve(new URL('../..', import.meta.url).pathname);
const readJson = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Module specifiers of static imports (also side-effect only), re-exports and literal dynamic imports. */
function specifiers(text: string): string[] {
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'/g),
  ];
  return found.map((m) => m[1]!);
}

test('nothing in src/ imports dev/ or a dev-only package', () => {
  const devOnly = new Set(Object.keys(readJson('package.json').devDependencies as Record<string, string>));
  const offending: string[] = [];
  for (const file of sourceFiles(join(root, 'src'))) {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const where = `${relative(root, file)} imports ${spec}`;
      if (spec.startsWith('.')) {
        if (relative(join(root, 'src'), resolve(dirname(file), spec)).startsWith('..')) offending.push(where);
      } else if (
        devOnly.has(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
      ) {
        offending.push(where);
      }
    }
  }
  assert.deepEqual(offending, []);
});

test('the package publishes and builds src/ only, and depends on no dev tool', () => {
  const pkg = readJson('package.json');
  assert.ok(!(pkg.files as string[]).some((entry) => entry === 'dev' || entry.startsWith('dev/')));
  assert.deepEqual((readJson('tsconfig.build.json') as { include: string[] }).include, ['src']);
  const runtime = Object.keys(pkg.dependencies as Record<string, string>);
  for (const devTool of ['oidc-provider', 'tsx']) assert.ok(!runtime.includes(devTool), devTool);
});

test('the shipped CLI has no demo command (the demo is npm start from a clone)', () => {
  const names = buildProgram(docContext()).commands.map((command) => command.name());
  assert.ok(names.includes('fetch'), names.join(' '));
  assert.ok(!names.includes('demo'), names.join(' '));
});
