// Store specifications as the CLI and the server configuration write them: `maildir:DIR`.
// (`postgres:URL` will join when the PostgreSQL store lands.)
import { isAbsolute, normalize } from 'node:path';
import { ConfigError } from '../errors.ts';

export type StoreSpec = { readonly kind: 'maildir'; readonly root: string };

/**
 * Parses `maildir:DIR` (DIR absolute; each user's Maildir is `DIR/<user>/`). Throws ConfigError
 * ERR_CONFIG_INVALID naming the `store` key.
 */
export function parseStoreSpec(spec: string): StoreSpec {
  const colon = spec.indexOf(':');
  const kind = colon === -1 ? '' : spec.slice(0, colon);
  const rest = colon === -1 ? '' : spec.slice(colon + 1);
  if (kind !== 'maildir') {
    throw new ConfigError('ERR_CONFIG_INVALID', 'store must be "maildir:/absolute/dir"', { key: 'store' });
  }
  if (!isAbsolute(rest) || /[\x00-\x1f\x7f]/.test(rest)) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'the maildir store directory must be an absolute path', {
      key: 'store',
    });
  }
  return Object.freeze({ kind: 'maildir', root: normalize(rest) });
}
