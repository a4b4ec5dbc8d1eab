// `npm run bench`: builds dist/ (the client and fetch benches measure the compiled package),
// then runs the benches in bench/, each in its own child process (`node --import tsx
// bench/NAME.ts ...`), one after another, output streamed; stops at the first that fails and
// exits with its code.
//   npm run bench                                   every bench with its defaults
//   npm run bench -- client --rounds 3 --sets small  one bench; the other arguments are its flags
//   npm run bench -- --help                          the benches and their header comments
// A bench's header may give environment variables on its command line (`UV_THREADPOOL_SIZE=16
// node --import tsx bench/fetch.ts ...`); they are set for its child unless already set.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The leading `//` comment block of a bench. */
function header(name: string): string[] {
  const lines = readFileSync(`${BENCH_DIR}${name}.ts`, 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('//'));
  return lines.slice(0, end === -1 ? lines.length : end).map((l) => l.replace(/^\/\/ ?/, ''));
}

/** `NAME=value` assignments in front of the bench's `node --import tsx bench/NAME.ts` line. */
function headerEnv(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of header(name)) {
    const m = new RegExp(
      `^\\s*(?:Run:\\s*)?((?:[A-Z_][A-Z0-9_]*=\\S+\\s+)+)node --import tsx bench/${name}\\.ts`,
    ).exec(line);
    for (const pair of m?.[1]?.trim().split(/\s+/) ?? []) {
      const [key, value] = pair.split('=', 2) as [string, string];
      if (process.env[key] === undefined) env[key] = value;
    }
  }
  return env;
}

function runBench(name: string, args: readonly string[]): Promise<number> {
  const env = headerEnv(name);
  const shown = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), `bench/${name}.ts`, ...args].join(' ');
  console.error(`\n=== ${shown}`);
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--import', 'tsx', `bench/${name}.ts`, ...args], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  // Ctrl-C reaches the child through the terminal; a plain kill of this process is passed on.
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      console.error(`bench ${name}: ${err.message}`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      process.off('SIGTERM', forward);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const status = code === 0 ? 'ok' : `failed (${signal ?? `exit ${code}`})`;
      console.error(`=== bench/${name}.ts ${status} after ${seconds.toFixed(1)} s`);
      resolve(code ?? 1);
    });
  });
}

/** The client and fetch benches measure the compiled package (bench/lib/built.ts): build it. */
async function build(): Promise<void> {
  console.error('=== npm run build');
  const child = spawn('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(1));
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    console.error('npm run build failed: no bench was run');
    process.exit(code);
  }
}

const benches = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();
const [first, ...rest] = process.argv.slice(2);

if (first === '--help' || first === '-h' || first === 'help') {
  console.log('npm run bench [-- NAME [FLAGS...]]  (no NAME: every bench with its defaults)\n');
  for (const name of benches)
    console.log(
      `${name}\n${header(name)
        .map((l) => `  ${l}`.trimEnd())
        .join('\n')}\n`,
    );
} else if (first === undefined) {
  await build();
  for (const name of benches) {
    const code = await runBench(name, []);
    if (code !== 0) process.exit(code);
  }
} else {
  const name = first.replace(/^bench\//, '').replace(/\.ts$/, '');
  if (!benches.includes(name)) {
    console.error(
      first.startsWith('-')
        ? `flags go after a bench name: npm run bench -- NAME ${first} ...`
        : `unknown bench "${first}"`,
    );
    console.error(`benches: ${benches.join(', ')} (npm run bench -- --help)`);
    process.exit(2);
  }
  await build();
  process.exitCode = await runBench(name, rest);
}
