import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EncryptedFileTokenStore } from '../../src/oauth/stores/encrypted-file.ts';
import { KeyFileSource } from '../../src/oauth/stores/key-source.ts';
import type { ChildResult } from './children.ts';

/** What the demo shows about the stored tokens: where and how, never the values. */
export interface StoredTokenView {
  readonly file: string;
  readonly mode: string;
  readonly keyFile: string;
  /** Held only to compare before/after a refresh and to check for leaks; never printed. */
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** True when any file under the data folder holds a token in plain text. */
  readonly plaintextFound: boolean;
  leakedInto(result: ChildResult): boolean;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Opens the CLI's encrypted token store the way `popgate` does (key file under the data dir). */
export async function inspectStoredTokens(xdgDataHome: string, account: string): Promise<StoredTokenView> {
  const dataDir = join(xdgDataHome, 'popgate');
  const keyFile = join(dataDir, 'token.key');
  const store = new EncryptedFileTokenStore({
    dir: join(dataDir, 'tokens'),
    keySource: new KeyFileSource(keyFile),
  });
  const tokens = await store.get(account);
  const file = store.fileFor(account);
  const mode = (await stat(file)).mode & 0o777;
  const secrets = [tokens?.accessToken, tokens?.refreshToken].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  let plaintextFound = false;
  for (const path of await filesUnder(xdgDataHome)) {
    const text = await readFile(path, 'latin1');
    if (secrets.some((s) => text.includes(s))) plaintextFound = true;
  }
  return {
    file,
    mode: `0${mode.toString(8)}`,
    keyFile,
    accessToken: tokens?.accessToken,
    refreshToken: tokens?.refreshToken,
    plaintextFound,
    leakedInto: (result) => secrets.some((s) => result.stdout.includes(s) || result.stderr.includes(s)),
  };
}
