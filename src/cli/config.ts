import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../errors.ts';
import { suggestKey } from '../internal/options.ts';
import {
  ACCOUNT_SETTINGS,
  type AccountConfig,
  PROXY_SETTINGS,
  type SettingSpec,
  TOP_LEVEL_KEYS,
} from './config-schema.ts';
import type { CliContext } from './context.ts';

export type { AccountConfig } from './config-schema.ts';

/** The whole configuration, validated once at the door and frozen. */
export interface PopgateConfig {
  /** The file it came from, or undefined when there was none. */
  readonly path: string | undefined;
  readonly accounts: ReadonlyMap<string, AccountConfig>;
  /** The raw `[server]` table; `popgate serve` validates it against the server's own options. */
  readonly server: Readonly<Record<string, unknown>> | undefined;
  /** The `[proxy]` table, validated against PROXY_SETTINGS (snake_case keys, defaults applied). */
  readonly proxy: Readonly<Record<string, unknown>> | undefined;
}

const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Reads and validates the config file; a missing file is an empty configuration. */
export async function loadConfig(ctx: Pick<CliContext, 'paths' | 'env'>): Promise<PopgateConfig> {
  const path = ctx.paths.configFile;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return Object.freeze({ path: undefined, accounts: new Map(), server: undefined, proxy: undefined });
    }
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `cannot read the config file ${path}: ${(error as Error).message}`,
    );
  }
  const config = parseConfig(text, path);
  const accounts = new Map(
    [...config.accounts].map(([name, account]) => [name, expandAccountPaths(account, ctx.env)]),
  );
  return Object.freeze({ ...config, accounts });
}

/**
 * The one `~` expansion: `~` and `~/...` become the home directory (`HOME`, else the system's);
 * `~user` is left alone. Applied once, when an account is loaded, so commands see plain paths.
 */
export function expandHome(path: string, env: NodeJS.ProcessEnv): string {
  return path === '~' || path.startsWith('~/') ? `${env.HOME ?? homedir()}${path.slice(1)}` : path;
}

/** Expands `~` in the path-valued settings (schema type `path`) and in the path part of `to`. */
function expandAccountPaths(account: AccountConfig, env: NodeJS.ProcessEnv): AccountConfig {
  const out: Record<string, unknown> = { ...account };
  for (const spec of ACCOUNT_SETTINGS) {
    const value = out[spec.property];
    if (spec.type === 'path' && typeof value === 'string') out[spec.property] = expandHome(value, env);
  }
  // `to` is KIND:PATH (maildir:DIR or mbox:FILE), checked by validateAccount.
  if (typeof out.to === 'string') {
    const colon = out.to.indexOf(':');
    out.to = `${out.to.slice(0, colon + 1)}${expandHome(out.to.slice(colon + 1), env)}`;
  }
  return Object.freeze(out) as unknown as AccountConfig;
}

/** Validates a config file's text. Unknown keys are errors that name the key. */
export function parseConfig(text: string, path: string): PopgateConfig {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${path} is not valid TOML: ${(error as Error).message}`);
  }
  for (const key of Object.keys(raw)) {
    if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(
        'ERR_CONFIG_UNKNOWN_KEY',
        `${path}: unknown key "${key}" (expected [accounts.NAME], [server] or [proxy])`,
        { key },
      );
    }
  }
  const accounts = new Map<string, AccountConfig>();
  const accountTables = raw.accounts ?? {};
  if (!isTable(accountTables)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${path}: "accounts" must be a table of [accounts.NAME] sections`,
      { key: 'accounts' },
    );
  }
  for (const [name, table] of Object.entries(accountTables)) {
    if (!isTable(table)) {
      throw new ConfigError('ERR_CONFIG_INVALID', `${path}: accounts.${name} must be a table`, {
        key: `accounts.${name}`,
      });
    }
    accounts.set(name, validateAccount(name, table, `${path}: accounts.${name}`));
  }
  const server = raw.server;
  if (server !== undefined && !isTable(server)) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${path}: "server" must be a table`, { key: 'server' });
  }
  const proxy = raw.proxy;
  if (proxy !== undefined && !isTable(proxy)) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${path}: "proxy" must be a table`, { key: 'proxy' });
  }
  return Object.freeze({
    path,
    accounts,
    server: server === undefined ? undefined : Object.freeze({ ...server }),
    proxy: proxy === undefined ? undefined : validateProxyTable(proxy, `${path}: proxy`),
  });
}

/** Validates a `[proxy]` table against PROXY_SETTINGS; unknown keys name themselves. */
export function validateProxyTable(
  table: Record<string, unknown>,
  where = 'proxy',
): Readonly<Record<string, unknown>> {
  const known = new Map(PROXY_SETTINGS.map((spec) => [spec.key, spec]));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(table)) {
    const spec = known.get(key);
    if (!spec) {
      const hint = suggestKey(key, known.keys());
      throw new ConfigError(
        'ERR_CONFIG_UNKNOWN_KEY',
        `${where}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        { key: `proxy.${key}` },
      );
    }
    out[key] = coerce(spec, value, where);
  }
  for (const spec of PROXY_SETTINGS) {
    if (out[spec.key] === undefined && spec.defaultValue !== undefined) out[spec.key] = spec.defaultValue;
  }
  return Object.freeze(out);
}

/**
 * Validates one account from a table keyed like the config file (snake_case). Used for config
 * file sections and for ad-hoc accounts assembled from flags and env vars.
 */
export function validateAccount(
  name: string,
  table: Record<string, unknown>,
  where = `account ${name}`,
): AccountConfig {
  if (!ACCOUNT_NAME.test(name)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${where}: account names use letters, digits, ".", "_" and "-" (at most 64)`,
      {
        key: name,
      },
    );
  }
  const out: Record<string, unknown> = { name };
  const known = new Map(ACCOUNT_SETTINGS.map((spec) => [spec.key, spec]));
  for (const [key, value] of Object.entries(table)) {
    const spec = known.get(key);
    if (!spec) {
      const hint = suggestKey(key, known.keys());
      throw new ConfigError(
        'ERR_CONFIG_UNKNOWN_KEY',
        `${where}: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
        {
          key,
        },
      );
    }
    if (value === undefined) continue;
    out[spec.property] = coerce(spec, value, where);
  }
  for (const spec of ACCOUNT_SETTINGS) {
    if (out[spec.property] === undefined && spec.defaultValue !== undefined)
      out[spec.property] = spec.defaultValue;
  }
  if (typeof out.user !== 'string' || out.user.length === 0) {
    throw new ConfigError(
      'ERR_CONFIG_MISSING',
      `${where}: "user" is required (the mailbox login, usually the email address)`,
      {
        key: 'user',
      },
    );
  }
  if (out.tokenCommand !== undefined && out.tokenFile !== undefined) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${where}: set either "token_command" or "token_file", not both`,
      { key: 'token_command' },
    );
  }
  if (out.to !== undefined && !/^(maildir|mbox):.+/.test(String(out.to))) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${where}: "to" must be maildir:DIR or mbox:FILE`, {
      key: 'to',
    });
  }
  if (out.scopes !== undefined) out.scopes = Object.freeze([...(out.scopes as string[])]);
  return Object.freeze(out) as unknown as AccountConfig;
}

function coerce(spec: Pick<SettingSpec, 'key' | 'type' | 'values'>, value: unknown, where: string): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError('ERR_CONFIG_INVALID', `${where}: "${spec.key}" must be ${expected}`, {
      key: spec.key,
    });
  };
  switch (spec.type) {
    case 'string':
    case 'path':
      if (typeof value !== 'string' || value.length === 0) return fail('a non-empty string');
      return value;
    case 'integer': {
      const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      // One phrasing per setting, whatever the fault: `abc` and `99999` are both "not a port".
      const what = spec.key === 'port' ? 'a port from 1 to 65535' : 'a whole number ≥ 0';
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return fail(what);
      if (spec.key === 'port' && (n < 1 || n > 65535)) return fail(what);
      return n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1' || value === 'yes') return true;
      if (value === 'false' || value === '0' || value === 'no') return false;
      return fail('true or false');
    case 'string[]': {
      const list = typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value;
      if (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || item.length === 0)) {
        return fail('a list of strings');
      }
      return list;
    }
    case 'enum': {
      const values = spec.values ?? [];
      const match =
        typeof value === 'string' ? values.find((v) => v.toLowerCase() === value.toLowerCase()) : undefined;
      if (match === undefined) return fail(`one of ${values.join(', ')}`);
      return match;
    }
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Looks up one account, with an error that lists the configured names. */
export function requireAccount(config: PopgateConfig, name: string): AccountConfig {
  const account = config.accounts.get(name);
  if (account) return account;
  const names = [...config.accounts.keys()];
  throw new ConfigError(
    'ERR_CONFIG_ACCOUNT_UNKNOWN',
    `no account "${name}" in ${config.path ?? 'the config (no config file found)'}; ${
      names.length ? `configured: ${names.join(', ')}` : 'add one with `popgate init`'
    }`,
    { key: name },
  );
}

/**
 * Env var for an account setting of the ad-hoc account: `POPGATE_<KEY>` (e.g. POPGATE_CLIENT_ID).
 * Precedence: config file, then env vars, then flags.
 */
export function envNameFor(spec: SettingSpec): string {
  return `POPGATE_${spec.key.toUpperCase()}`;
}

/** Flag name for an account setting: `--client-id`. */
export function flagNameFor(spec: SettingSpec): string {
  return `--${spec.key.replaceAll('_', '-')}`;
}

/**
 * Merges an account's file settings with env vars and flag values (flags win), then validates.
 * `flags` holds commander's camelCase option values; only settings present in the schema apply.
 */
export function mergeAccountSources(
  name: string,
  fromFile: AccountConfig | undefined,
  env: NodeJS.ProcessEnv,
  flags: Readonly<Record<string, unknown>>,
): AccountConfig {
  const table: Record<string, unknown> = {};
  for (const spec of ACCOUNT_SETTINGS) {
    const fileValue = fromFile?.[spec.property];
    const envValue = env[envNameFor(spec)];
    const flagValue = flags[camel(spec.key)];
    const value =
      flagValue ?? (envValue === undefined || envValue === '' ? undefined : envValue) ?? fileValue;
    if (value !== undefined) table[spec.key] = value;
  }
  return expandAccountPaths(validateAccount(name, table), env);
}

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The config account `name` with env vars and flags applied (flags win). */
export async function accountFromCli(
  ctx: Pick<CliContext, 'paths' | 'env'>,
  name: string | undefined,
  flags: Readonly<Record<string, unknown>> = {},
): Promise<AccountConfig> {
  const config = await loadConfig(ctx);
  if (!name) {
    // With exactly one account configured there is nothing to choose.
    const names = [...config.accounts.keys()];
    if (names.length !== 1)
      throw new ConfigError(
        'ERR_CONFIG_MISSING',
        names.length === 0
          ? `no account configured in ${config.path ?? ctx.paths.configFile}: add one with popgate init, or name it with --account NAME`
          : `name the account with --account NAME (configured: ${names.join(', ')})`,
        { key: 'account' },
      );
    name = names[0]!;
  }
  const fromFile = config.accounts.get(name);
  if (!fromFile && Object.keys(flags).length === 0) {
    const names = [...config.accounts.keys()];
    throw new ConfigError(
      'ERR_CONFIG_ACCOUNT_UNKNOWN',
      `no account "${name}" in ${config.path ?? ctx.paths.configFile}${names.length ? `; configured: ${names.join(', ')}` : ''}`,
      { key: name },
    );
  }
  return mergeAccountSources(name, fromFile, ctx.env, flags);
}
