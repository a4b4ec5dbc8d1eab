/**
 * Checks one answer of `popgate init` when it is given, with the rules the config loader applies
 * (validateAccount and the schema in config-schema.ts), the OAuth endpoint policy (checkEndpoint:
 * https, plain http only to loopback by explicit choice) and the CA file check (readCaFile). No
 * rule is restated here, so an answer init accepts is one the loader and `login` accept, and a
 * fault is worded the way the loader words it. Each check throws a ConfigError naming the key.
 */
import { ConfigError, OAuthError } from '../errors.ts';
import { readCaFile } from '../internal/ca-file.ts';
import { didYouMean } from '../internal/options.ts';
import { checkEndpoint } from '../oauth/http.ts';
import { expandHome, validateAccount } from './config.ts';
import { ACCOUNT_SETTINGS } from './config-schema.ts';

/** The loader prefixes its faults with where they are; an answer is "here", so it is cut off. */
const WHERE = 'answer';

function reworded(error: unknown, key: string, hint = ''): unknown {
  if (!(error instanceof ConfigError)) return error;
  const message = error.message.startsWith(`${WHERE}: `)
    ? error.message.slice(WHERE.length + 2)
    : error.message;
  return new ConfigError(error.code, `${message}${hint}`, { key });
}

/** An account name as the loader takes it (letters, digits, `.`, `_`, `-`; at most 64). */
export function checkAccountName(name: string): string {
  try {
    validateAccount(name, { user: 'u' }, WHERE);
  } catch (error) {
    throw reworded(error, 'account');
  }
  return name;
}

/**
 * The value of config key `key` (e.g. `port`, `provider`, `scopes`, `to`) as the loader would
 * hold it: a number for `port`, the canonical spelling of an enum, a list for `scopes`. A
 * mistyped enum value gets the closest allowed one as a "did you mean" hint.
 */
export function checkSetting(key: string, value: string): unknown {
  const spec = ACCOUNT_SETTINGS.find((s) => s.key === key);
  if (!spec) throw new Error(`no setting ${key}`);
  try {
    const account = validateAccount(
      'answer',
      key === 'user' ? { user: value } : { user: 'u', [key]: value },
      WHERE,
    );
    return account[spec.property];
  } catch (error) {
    const hint = spec.type === 'enum' ? didYouMean(value.toLowerCase(), spec.values ?? []) : '';
    throw reworded(error, key, hint);
  }
}

/**
 * An issuer URL by the OAuth endpoint policy. `loopback-http` means plain http to a loopback
 * host, which is allowed only by the explicit choice `allow_insecure_http` (the caller asks for
 * it or names the flag); every other fault throws.
 */
export function checkIssuer(value: string, allowInsecureHttp: boolean): 'ok' | 'loopback-http' {
  try {
    checkEndpoint(value, 'issuer', { allowInsecureHttp });
    return 'ok';
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    if (!allowInsecureHttp) {
      try {
        checkEndpoint(value, 'issuer', { allowInsecureHttp: true });
        return 'loopback-http';
      } catch {
        // Not the loopback case: report the first fault.
      }
    }
    throw new ConfigError('ERR_CONFIG_INVALID', error.message, { key: 'issuer' });
  }
}

/** A CA file that holds at least one current PEM certificate (`~` expanded as the loader does). */
export async function checkCa(path: string, env: NodeJS.ProcessEnv): Promise<string> {
  await readCaFile(expandHome(path, env), 'ca');
  return path;
}
