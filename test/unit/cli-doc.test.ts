import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Command } from 'commander';
import { flagsOf, renderCliDoc } from '../../src/cli/cli-doc.ts';
import { docContext } from '../../src/cli/doc-context.ts';
import { buildProgram } from '../../src/cli/main.ts';

const committed = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

test('docs/cli.md matches the --help of every command (run npm run docs:cli)', () => {
  assert.equal(committed, renderCliDoc(buildProgram(docContext())));
});

test('every flag of every command is documented, and every documented flag exists', () => {
  const program = buildProgram(docContext());
  const walk = (command: Command): string[] => [...flagsOf(command), ...command.commands.flatMap(walk)];
  const flags = new Set(walk(program));
  for (const flag of flags) assert.ok(committed.includes(flag), `${flag} is not in docs/cli.md`);
  const documented = new Set([...committed.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]));
  for (const flag of documented) {
    if (flag === undefined) continue;
    assert.ok(flags.has(flag) || flag === '--help', `docs/cli.md names ${flag}, which no command accepts`);
  }
});
