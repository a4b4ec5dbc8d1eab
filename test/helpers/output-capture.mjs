// Loaded into every test process by test/run.mjs (`--import`) when POPGATE_TEST_LOG_DIR is set,
// so that the secret scan reads what the tests' children and the library emit even when a test
// keeps that output in a string (asserting on it, printing it only on failure):
// - the stderr (logs, error messages) of every child running popgate code: `popgate` CLI
//   children (pino of `popgate serve`, CLI errors), node children and the demo (`npm start`),
//   spawned with a pipe; and the stdout of popgate CLI children and the demo, except
//   `popgate token print` and `popgate proxy passwords add`, whose stdout is the token or the
//   new app password by design. Third-party peers (curl, mutt, python3, ...) are left out: their traces
//   echo the credentials the test handed them (`curl -v` prints the AUTH line it sent).
//   The tee wraps the stream's `push`, so the test still reads every byte, in order, in
//   whatever mode it reads;
// - every `node:diagnostics_channel` event popgate publishes (the channel names are read from
//   src/), as JSON lines: the library's events are what the CLI and server turn into log lines.
// Nothing changes for a test: no listener, no flowing mode, no extra output.
import { ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = process.env.POPGATE_TEST_LOG_DIR;
if (dir) install(dir);

function install(logDir) {
  const pid = process.pid;
  const testFile = basename(process.argv[1] ?? 'unknown');
  const eventsFd = openSync(join(logDir, `events-${pid}.log`), 'a', 0o600);
  writeSync(eventsFd, `# popgate test output capture: ${testFile} pid ${pid}\n`);
  process.once('exit', () => closeSync(eventsFd));

  let children = 0;
  const originalSpawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function spawnWithCapture(options) {
    const result = originalSpawn.call(this, options);
    try {
      const n = ++children;
      const args = Array.isArray(options?.args) ? options.args.map(String) : [];
      const command = basename(String(options?.file ?? 'unknown'));
      // `npm start` is the demo: popgate's own narrative on stdout.
      const popgate = args.some((arg) => arg.endsWith('bin/popgate.js')) || command === 'npm';
      const node = options?.file === process.execPath || command === 'node' || command === 'npm';
      const tokenPrint =
        (args.includes('token') && args.includes('print')) ||
        (args.includes('passwords') && args.includes('add'));
      if (popgate || node) {
        tee(this.stderr, join(logDir, `child-${pid}-${n}-stderr.log`), `${command} stderr (${testFile})`);
      }
      if (popgate && !tokenPrint) {
        tee(this.stdout, join(logDir, `child-${pid}-${n}-stdout.log`), `${command} stdout (${testFile})`);
      }
    } catch {
      // Capture is best effort; the test's own handling of the child is never affected.
    }
    return result;
  };

  for (const name of popgateChannels()) {
    diagnostics.subscribe(name, (message) => {
      writeSync(eventsFd, `${name} ${serialize(message)}\n`);
    });
  }
}

/** Appends everything the readable side of a child pipe delivers to `path` (opened lazily). */
function tee(stream, path, label) {
  if (!stream || typeof stream.push !== 'function') return;
  let fd;
  const push = stream.push;
  stream.push = function pushWithCapture(chunk, encoding) {
    if (chunk !== null && chunk !== undefined) {
      try {
        if (fd === undefined) {
          fd = openSync(path, 'a', 0o600);
          writeSync(fd, `# ${label}\n`);
        }
        writeSync(fd, typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
      } catch {
        // best effort
      }
    }
    return push.call(this, chunk, encoding);
  };
  stream.once('close', () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  });
}

function serialize(message) {
  try {
    return JSON.stringify(message, (_key, value) => {
      if (typeof value === 'bigint') return value.toString();
      if (value instanceof Error) return { name: value.name, code: value.code, message: value.message };
      if (Buffer.isBuffer(value)) return value.toString('latin1');
      return value;
    });
  } catch {
    return String(message);
  }
}

/** Every diagnostics channel name popgate publishes on: the string literals of src/diagnostics.ts. */
function popgateChannels() {
  const list = readFileSync(new URL('../../src/diagnostics.ts', import.meta.url), 'utf8');
  return [...new Set([...list.matchAll(/name: '(popgate:[a-z0-9:._-]+)'/g)].map((m) => m[1]))].sort();
}
