#!/usr/bin/env node
// In a development checkout (src/ present, tsx installed) run the TypeScript sources, so a stale
// dist/ is never used; an installed package ships only dist/ and runs that. The test runner sets
// POPGATE_RUN_DIST=1 after compiling dist/ afresh, because compiled code starts faster.
import { existsSync } from 'node:fs';

// fetch fsyncs every message and serve reads large ones through libuv's thread pool; 4 threads
// (the default) make those queue behind one another. Must be set before the pool's first use.
process.env.UV_THREADPOOL_SIZE ??= '16';

const source = new URL('../src/cli/run.ts', import.meta.url);
const compiled = new URL('../dist/cli/run.js', import.meta.url);
const tsx = new URL('../node_modules/tsx/package.json', import.meta.url);
const preferDist = process.env.POPGATE_RUN_DIST === '1' && existsSync(compiled);
if (!preferDist && existsSync(source) && existsSync(tsx)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(compiled.href);
}
