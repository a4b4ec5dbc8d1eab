// The layering rules of docs/architecture.md are enforced by the linter, not hoped for: the
// project's own biome.json, run over a scratch tree with one violation of each rule, reports
// each one (and nothing in the clean files).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

const repo = new URL('../..', import.meta.url).pathname;

const files: Record<string, string> = {
  'src/errors.ts': 'export const E = 1;\n',
  'src/diagnostics.ts': "import { S } from './server/s.ts';\nexport const D = S;\n",
  'src/protocol/ok.ts':
    "import { readFile } from 'node:fs/promises';\nimport { E } from '../errors.ts';\nexport const P = [readFile, E];\n",
  'src/protocol/bad.ts': "import { S } from '../server/s.ts';\nexport const B = S;\n",
  'src/internal/bad.ts': "import pino from 'pino';\nexport const I = pino;\n",
  'src/server/s.ts': 'export const S = 1;\n',
  'src/server/uses-cli.ts': "import { C } from '../cli/c.ts';\nexport const U = C;\n",
  'src/server/uses-dev.ts': "import { X } from '../../dev/x.ts';\nexport const V = X;\n",
  'src/cli/c.ts': "import { X } from '../../dev/x.ts';\nexport const C = X;\n",
  'src/fetch/a.ts': "import { B } from './b.ts';\nexport const A = () => B;\n",
  'src/fetch/b.ts': "import { A } from './a.ts';\nexport const B = () => A;\n",
  'dev/x.ts': 'export const X = 1;\n',
};

test('the linter refuses each layering violation and every import circle', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'popgate-layering-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = JSON.parse(readFileSync(join(repo, 'biome.json'), 'utf8'));
  delete config.$schema;
  config.files = { includes: ['src/**'] };
  writeFileSync(join(dir, 'biome.json'), JSON.stringify(config));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const run = spawnSync(
    join(repo, 'node_modules/.bin/biome'),
    ['lint', '--max-diagnostics=100', '--reporter=json', 'src'],
    { cwd: dir, encoding: 'utf8' },
  );
  const report = JSON.parse(run.stdout) as {
    diagnostics: { category: string; location: { path: string } }[];
  };
  const found = report.diagnostics
    .filter((d) => /noRestrictedImports|noImportCycles/.test(d.category))
    .map((d) => `${d.location.path} ${d.category.split('/').pop()}`)
    .sort();
  assert.deepEqual(found, [
    'src/cli/c.ts noRestrictedImports',
    'src/diagnostics.ts noRestrictedImports',
    'src/fetch/a.ts noImportCycles',
    'src/fetch/b.ts noImportCycles',
    'src/internal/bad.ts noRestrictedImports',
    'src/protocol/bad.ts noRestrictedImports',
    'src/server/uses-cli.ts noRestrictedImports',
    'src/server/uses-dev.ts noRestrictedImports',
  ]);
});
