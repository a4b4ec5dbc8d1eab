import { homedir } from 'node:os';
import { join } from 'node:path';

/** XDG base directories for popgate's config, data (tokens) and state (UIDL, locks). */
export interface PopgatePaths {
  readonly configFile: string;
  readonly dataDir: string;
  readonly stateDir: string;
}

export function resolvePaths(env: NodeJS.ProcessEnv): PopgatePaths {
  const home = env.HOME ?? homedir();
  const configHome = env.XDG_CONFIG_HOME || join(home, '.config');
  const dataHome = env.XDG_DATA_HOME || join(home, '.local', 'share');
  const stateHome = env.XDG_STATE_HOME || join(home, '.local', 'state');
  return Object.freeze({
    configFile: env.POPGATE_CONFIG || join(configHome, 'popgate', 'config.toml'),
    dataDir: join(dataHome, 'popgate'),
    stateDir: join(stateHome, 'popgate'),
  });
}
