// The package as a consumer sees it: every subpath export of package.json resolves, loads and
// type-checks from outside the repository, against the built dist/ (strict, NodeNext), and the
// consumer program in test/fixtures/consumer/ names every subpath there is.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = new URL('../..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, unknown>;
};
const fixture = join(repo, 'test/fixtures/consumer/consumer.mts');
const subpaths = Object.keys(pkg.exports)
  .filter((key) => key !== './package.json')
  .map((key) => (key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`));

/** dist/ as the test runner built it; built here when this file runs on its own. */
function ensureDist(): void {
  if (process.env.POPGATE_RUN_DIST === '1' && existsSync(join(repo, 'dist/index.d.ts'))) return;
  execFileSync(
    process.execPath,
    [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: repo,
    },
  );
}

/** A project outside the repository with popgate installed (as a symlink, as `npm link` does). */
function consumerProject(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'popgate-consumer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
  symlinkSync(repo, join(dir, 'node_modules', pkg.name));
  symlinkSync(join(repo, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  copyFileSync(fixture, join(dir, 'consumer.mts'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
      },
      files: ['consumer.mts'],
    }),
  );
  return dir;
}

test('the consumer program imports every subpath export', () => {
  const text = readFileSync(fixture, 'utf8');
  const imported = new Set([...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]));
  assert.deepEqual(
    subpaths.filter((spec) => !imported.has(spec)),
    [],
  );
});

test('every subpath export type-checks in a strict NodeNext consumer outside the repository', (t) => {
  ensureDist();
  const dir = consumerProject(t);
  const tsc = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', dir], {
    encoding: 'utf8',
  });
  assert.equal(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`);
});

test('every subpath export loads at run time and exports something', (t) => {
  ensureDist();
  const dir = consumerProject(t);
  const script = `for (const spec of ${JSON.stringify(subpaths)}) {
    const mod = await import(spec);
    if (Object.keys(mod).length === 0) throw new Error(spec + ' exports nothing');
  }
  const server = await import('${pkg.name}/server');
  console.log(JSON.stringify(Object.keys(server).sort()));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    encoding: 'utf8',
  });
  // The server's surface is what an embedder needs, not its session machinery.
  assert.deepEqual(JSON.parse(out), ['DEFAULT_LIMITS', 'createPop3Server', 'parseListenUrl']);
});
