#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (TypeScript through tsx) and ends
// with the plain closing line CI reads: "N passed, N failed, N skipped".
// Usage: npm test [-- FILE_OR_SUBSTRING ...]
//
// Then the secret scan (issue 3): the test processes append every secret they mint to a ledger
// (POPGATE_SECRET_LEDGER, see dev/secret-ledger.ts) and tee their children's logs and
// popgate's diagnostics events to a log directory (POPGATE_TEST_LOG_DIR, see
// test/helpers/output-capture.mjs); this runner keeps a copy of everything the test run printed.
// After the run every ledger entry is looked for in all of it (test/helpers/secret-scan.mjs). A
// secret found, an empty ledger after tests that mint tokens, or a capture that did not load
// fails the run; so does the scanner missing a canary planted in the log directory, or (issue 11)
// a second canary that only the children of test/unit/secret-scan-capture.test.ts print missing
// from the log directory's child captures: that one proves the capture, not just the scanner.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createSummaryReader } from './helpers/run-summary.mjs';
import { filesUnder, readLedger, scanForSecrets } from './helpers/secret-scan.mjs';

const root = new URL('..', import.meta.url).pathname;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'fixtures' || name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const filters = process.argv.slice(2);
let files = findTests(join(root, 'test')).map((f) => relative(root, f));
if (filters.length > 0) files = files.filter((f) => filters.some((flt) => f.includes(flt)));
if (files.length === 0) {
  console.error('no test files matched');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// Everything the scan reads lives in one private temp dir (mkdtemp: 0700).
const scanDir = mkdtempSync(join(tmpdir(), 'popgate-secret-scan-'));
const ledger = join(scanDir, 'ledger');
const logDir = join(scanDir, 'logs');
mkdirSync(logDir, { mode: 0o700 });
const capture = openSync(join(scanDir, 'output.log'), 'a', 0o600);
// The capture canary: handed to the test processes, printed by the children of CAPTURE_TEST only.
const CAPTURE_TEST = 'test/unit/secret-scan-capture.test.ts';
const captureCanary = randomBytes(24).toString('base64url');

// The CLI children that tests start (bin/popgate.js) run the freshly compiled dist/, which starts
// about twice as fast as the sources through tsx; the crash tests start it hundreds of times.
const build = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    encoding: 'utf8',
  },
);
const useDist = build.status === 0;
if (!useDist) {
  console.error(`test run: the build failed\n${build.stdout}${build.stderr}`);
  // Under CI a type error fails the run; on a developer's machine the CLI children run the sources
  // through tsx so the tests can still be tried while the types are being fixed.
  if (process.env.CI === 'true') {
    closeSync(capture);
    rmSync(scanDir, { recursive: true, force: true });
    console.log('0 passed, 1 failed, 0 skipped');
    process.exit(1);
  }
  console.error('test run: CLI children run the sources through tsx');
}

const args = [
  '--import',
  'tsx',
  '--import',
  new URL('./helpers/output-capture.mjs', import.meta.url).href,
  '--test',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  `--test-concurrency=${process.env.POPGATE_TEST_CONCURRENCY ?? '2'}`,
  '--test-timeout=600000',
  ...files,
];
const child = spawn(process.execPath, args, {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
  env: {
    ...process.env,
    POPGATE_SECRET_LEDGER: ledger,
    POPGATE_TEST_LOG_DIR: logDir,
    POPGATE_TEST_CAPTURE_CANARY: captureCanary,
    ...(useDist ? { POPGATE_RUN_DIST: '1' } : {}),
  },
});
// On Ctrl-C or SIGTERM the child stops too; the run ends through 'close' (scan, temp dir removed).
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
const summary = createSummaryReader();
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  writeSync(capture, chunk);
  summary.feed(chunk);
});
child.stderr.on('data', (chunk) => {
  process.stderr.write(chunk);
  writeSync(capture, chunk);
});
child.on('close', (code) => {
  closeSync(capture);
  const count = (label) => summary.count(label);
  const passed = count('pass');
  const failed = count('fail') + count('cancelled');
  const skipped = count('skipped') + count('todo');
  const scanOk = secretScan(skipped);
  const ok = code === 0 && failed === 0 && passed > 0 && scanOk;
  console.log(`${passed} passed, ${ok ? failed : Math.max(failed, 1)} failed, ${skipped} skipped`);
  process.exit(ok ? 0 : 1);
});

/**
 * The capture canary's findings, checked: when CAPTURE_TEST ran, its three children printed the
 * canary (two on stderr, one on stdout), so it must be in two `child-*-stderr.log` files and one
 * `child-*-stdout.log` file of the log dir, and in no other file (not the runner's copy of the
 * output, not a test log): it reaches the scan through the children's capture or not at all.
 */
function captureCanaryProblems(found) {
  const problems = [];
  const isChild = (f, stream) =>
    relative(logDir, f.file).match(/^child-\d+-\d+-(stdout|stderr)\.log$/)?.[1] === stream;
  const outside = found.filter((f) => !isChild(f, 'stderr') && !isChild(f, 'stdout'));
  if (outside.length > 0) {
    const where = [...new Set(outside.map((f) => relative(scanDir, f.file)))].slice(0, 3).join(', ');
    problems.push(`the capture canary turned up outside the children's captures (${where})`);
  }
  if (!files.includes(CAPTURE_TEST)) return problems;
  const stderrFiles = new Set(found.filter((f) => isChild(f, 'stderr')).map((f) => f.file)).size;
  const stdoutFiles = new Set(found.filter((f) => isChild(f, 'stdout')).map((f) => f.file)).size;
  if (stderrFiles < 2 || stdoutFiles < 1) {
    problems.push(
      `the capture canary that ${CAPTURE_TEST}'s children print was found in ${stderrFiles} of 2 ` +
        `child stderr and ${stdoutFiles} of 1 child stdout captures: test/helpers/output-capture.mjs ` +
        "is not teeing the children's output to the scan",
    );
  }
  return problems;
}

/** Scans the run's output for every secret of the ledger; prints the figures; true when clean. */
function secretScan(skipped) {
  const problems = [];
  const warnings = [];
  let keep = false;
  try {
    const lines = readLedger(ledger);
    // A canary through the whole path (ledger, log dir, scanner): it must be found, exactly there.
    const canary = randomBytes(24).toString('base64url');
    const canaryLine = lines.length + 1;
    const canaryFile = join(logDir, 'canary.log');
    const captureCanaryLine = lines.length + 2;
    appendFileSync(ledger, `${canary}\n${captureCanary}\n`, { mode: 0o600 });
    writeFileSync(canaryFile, `scanner self-check: ${canary}\n`, { mode: 0o600 });
    const outputs = filesUnder(scanDir, new Set([ledger]));
    const started = Date.now();
    const scan = scanForSecrets([...lines, canary, captureCanary], outputs);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const isCanary = (f) => f.ledgerLine === canaryLine;
    const isCaptureCanary = (f) => f.ledgerLine === captureCanaryLine;
    const leaks = scan.findings.filter((f) => !isCanary(f) && !isCaptureCanary(f));
    if (!scan.findings.some((f) => isCanary(f) && f.file === canaryFile && f.form === 'exact')) {
      problems.push('the scanner did not find the canary planted in the log directory');
    }
    if (scan.findings.some((f) => isCanary(f) && f.file !== canaryFile)) {
      problems.push('the canary turned up outside its file');
    }
    problems.push(...captureCanaryProblems(scan.findings.filter(isCaptureCanary)));
    const secrets = scan.secrets - 2;
    const processes = readdirSync(logDir).filter((n) => n.startsWith('events-')).length;
    if (processes === 0) problems.push('no test process loaded test/helpers/output-capture.mjs');
    const minting = files.filter((f) =>
      /\b(startTestAuthorizationServer|startAuthorizationServer|startDovecot|createSigningKey)\(/.test(
        readFileSync(join(root, f), 'utf8'),
      ),
    );
    if (secrets === 0 && minting.length > 0) {
      const empty =
        `the ledger is empty although ${minting.length} test file(s) that mint tokens ran ` +
        `(${minting.slice(0, 3).join(', ')}${minting.length > 3 ? ', ...' : ''}): the scan would pass vacuously`;
      // Outside CI a missing peer skips its tests (requirePeer); under CI=true that fails anyway.
      if (skipped > 0 && process.env.CI !== 'true')
        warnings.push(`warning: ${empty} (or were they skipped?)`);
      else problems.push(empty);
    }
    const size =
      scan.bytes >= 1e6 ? `${(scan.bytes / 1e6).toFixed(1)} MB` : `${(scan.bytes / 1e3).toFixed(1)} kB`;
    const short = scan.ignored > 0 ? ` (${scan.ignored} shorter than 16 characters not scanned)` : '';
    console.log(
      `secret scan: ${secrets} secrets issued${short}, ${leaks.length} found in ${size} of output ` +
        `(${outputs.length} files from ${processes} test processes, ${seconds} s)`,
    );
    if (leaks.length > 0) {
      keep = true;
      const byLine = new Map();
      for (const f of leaks) byLine.set(f.ledgerLine, [...(byLine.get(f.ledgerLine) ?? []), f]);
      problems.push(`${byLine.size} secret(s) found in the test output (ledger line, form, where):`);
      for (const [line, found] of [...byLine].slice(0, 20)) {
        const where = found
          .slice(0, 3)
          .map((f) => `${f.form} in ${relative(scanDir, f.file)} line ${f.line} (byte ${f.offset})`)
          .join('; ');
        problems.push(
          `  ledger line ${line}: ${where}${found.length > 3 ? `; ${found.length - 3} more` : ''}`,
        );
      }
      problems.push(`kept for inspection (test-only secrets; delete when done): ${scanDir}`);
    }
  } catch (error) {
    problems.push(`the scan itself failed: ${error?.stack ?? error}`);
  }
  for (const problem of [...warnings, ...problems]) console.log(`secret scan: ${problem}`);
  if (!keep) rmSync(scanDir, { recursive: true, force: true });
  return problems.length === 0;
}
