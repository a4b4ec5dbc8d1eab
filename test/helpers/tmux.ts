// Drives `popgate` on a real terminal: each run is a tmux window, the test types with send-keys
// and reads the screen with capture-pane (-J joins wrapped lines, so a long URL reads whole).
// The script behind each window prints EXIT=<code> when popgate ends.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const bin = join(root, 'bin', 'popgate.js');

export interface Tmux {
  /** Starts `popgate ARGS` in a new window `name`; `extraEnv` adds to the session's env. */
  start(name: string, args: readonly string[], extraEnv?: Readonly<Record<string, string>>): Promise<void>;
  /** The window's screen (and scrollback) as text. */
  screen(name: string): Promise<string>;
  /** Waits (at most 60 s) until the screen matches `pattern`, polling every 100 ms. */
  waitFor(name: string, pattern: RegExp | ((screen: string) => boolean)): Promise<string>;
  /** Types `text` and Enter. */
  type(name: string, text: string): Promise<void>;
  stop(): Promise<void>;
}

const quote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

/** A tmux server on its own socket in `dir`, with `env` as the whole environment of popgate. */
export function tmuxSession(dir: string, env: Readonly<Record<string, string>>): Tmux {
  const socket = join(dir, 'tmux.sock');
  let started = false;
  const screen = async (name: string): Promise<string> => {
    const { stdout } = await exec('tmux', [
      '-S',
      socket,
      'capture-pane',
      '-p',
      '-J',
      '-S',
      '-200',
      '-t',
      `popgate:${name}`,
    ]);
    return stdout;
  };
  return {
    async start(name, args, extraEnv = {}) {
      const script = join(dir, `${name}.sh`);
      const exports = Object.entries({ ...env, ...extraEnv })
        .map(([key, value]) => `export ${key}=${quote(value)}`)
        .join('\n');
      await writeFile(
        script,
        `${exports}\ncd ${quote(root)}\nnode ${quote(bin)} ${args.map(quote).join(' ')}\necho "EXIT=$?"\nsleep 120\n`,
      );
      const command = started ? 'new-window' : 'new-session';
      const target = started
        ? ['-t', 'popgate', '-n', name]
        : ['-d', '-s', 'popgate', '-n', name, '-x', '200', '-y', '50'];
      await exec('tmux', ['-S', socket, '-f', '/dev/null', command, ...target, `sh ${script}`], { env });
      started = true;
    },
    screen,
    async waitFor(name, pattern) {
      let last = '';
      for (let i = 0; i < 600; i++) {
        last = await screen(name);
        if (typeof pattern === 'function' ? pattern(last) : pattern.test(last)) return last;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`timed out waiting for ${String(pattern)} in window ${name}; screen:\n${last}`);
    },
    async type(name, text) {
      await exec('tmux', ['-S', socket, 'send-keys', '-t', `popgate:${name}`, '-l', text]);
      await exec('tmux', ['-S', socket, 'send-keys', '-t', `popgate:${name}`, 'Enter']);
    },
    async stop() {
      if (started) await exec('tmux', ['-S', socket, 'kill-server']).catch(() => {});
    },
  };
}
