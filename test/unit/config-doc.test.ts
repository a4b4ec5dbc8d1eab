import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigDoc } from '../../src/cli/config-doc.ts';
import { docContext } from '../../src/cli/doc-context.ts';
import { buildProgram } from '../../src/cli/main.ts';

test('docs/configuration.md is generated from the current schema (run npm run docs:config)', () => {
  const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(committed, renderConfigDoc(buildProgram(docContext())));
});
