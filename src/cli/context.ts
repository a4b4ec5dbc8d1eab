import type { Writable } from 'node:stream';
import type { PopgatePaths } from './paths.ts';

/**
 * What every subcommand gets from the CLI's front door. `cli` is the only layer that reads the
 * environment, prints or exits; library code receives values from here.
 */
export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly paths: PopgatePaths;
  readonly stdout: Writable & { isTTY?: boolean; columns?: number };
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Set by a command to report its outcome; main() exits with it. */
  exitCode: number;
  /**
   * Runs another popgate command line in this process through main() (its own exit code, its
   * errors printed as main() prints them); set by main(). `init` uses it to offer login and doctor.
   */
  run?: (argv: readonly string[]) => Promise<number>;
}
