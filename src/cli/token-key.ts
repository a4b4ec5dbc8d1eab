// The CLI's side of the token store key: reads POPGATE_KEY_SOURCE and POPGATE_PASSPHRASE, decides
// whether an OS keyring can exist here, and prompts for a passphrase on the terminal. The choice
// itself is the library's (src/oauth/stores/select-key-source.ts).
import { KeyringKeySource } from '../oauth/stores/keyring-key-source.ts';
import {
  type KeySourceKind,
  type KeySourceSelection,
  parseKeySourceKind,
  selectKeySource,
} from '../oauth/stores/select-key-source.ts';
import type { CliContext } from './context.ts';
import { type PromptInput, promptPassphrase } from './passphrase-prompt.ts';

export interface KeySourceFlags {
  /** `--passphrase-prompt`: use the passphrase source and ask for it on the terminal. */
  readonly passphrasePrompt?: boolean;
}

/**
 * The keyring for this data directory, or why there can be none. On Linux and the BSDs the
 * keyring is the Secret Service on the D-Bus session bus: without DBUS_SESSION_BUS_ADDRESS there
 * is none to ask (servers, containers, ssh sessions), and the module is not even loaded.
 */
export function keyringFor(
  ctx: Pick<CliContext, 'env' | 'paths'>,
): { keyring: KeyringKeySource } | { reason: string } {
  const needsDbus = process.platform !== 'darwin' && process.platform !== 'win32';
  if (needsDbus && !ctx.env.DBUS_SESSION_BUS_ADDRESS) {
    return {
      reason: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service to ask',
    };
  }
  return { keyring: new KeyringKeySource({ entry: `token-store:${ctx.paths.dataDir}` }) };
}

/**
 * Chooses the key source for a CLI command: `--passphrase-prompt` or POPGATE_KEY_SOURCE force
 * one; else POPGATE_PASSPHRASE; else what an earlier login recorded; else the OS keyring when it
 * is usable, else the key file. The passphrase is asked for on the terminal (never taken from an
 * argument) when that source is chosen and POPGATE_PASSPHRASE is unset.
 */
export async function selectCliKeySource(
  ctx: Pick<CliContext, 'env' | 'paths' | 'stdin' | 'stderr'>,
  flags: KeySourceFlags = {},
): Promise<KeySourceSelection> {
  const forced = ctx.env.POPGATE_KEY_SOURCE;
  let force: KeySourceKind | undefined;
  if (flags.passphrasePrompt) force = 'passphrase';
  else if (forced !== undefined && forced !== '') force = parseKeySourceKind(forced, 'POPGATE_KEY_SOURCE');
  const passphrase = flags.passphrasePrompt ? undefined : ctx.env.POPGATE_PASSPHRASE;
  const keyring = force === undefined || force === 'keyring' ? keyringFor(ctx) : undefined;
  const stdin = ctx.stdin as PromptInput;
  return selectKeySource({
    dataDir: ctx.paths.dataDir,
    ...(force ? { force } : {}),
    ...(passphrase !== undefined && passphrase !== '' ? { passphrase } : {}),
    ...(stdin.isTTY ? { askPassphrase: (options) => promptPassphrase(stdin, ctx.stderr, options) } : {}),
    ...(keyring && 'keyring' in keyring ? { keyring: keyring.keyring } : {}),
    ...(keyring && 'reason' in keyring ? { keyringAbsentReason: keyring.reason } : {}),
  });
}

/** The flag of every command that opens the token store, and its help text. */
export const PASSPHRASE_PROMPT_FLAG = '--passphrase-prompt';
export const PASSPHRASE_PROMPT_HELP =
  'protect the tokens with a passphrase asked for on the terminal without echo (instead of POPGATE_PASSPHRASE, the keyring or the key file)';
