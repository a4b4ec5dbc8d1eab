// Where the token store key comes from: the keyring key source over a scripted stand-in for
// @napi-rs/keyring (the real module under a real Secret Service is test/interop/oauth-keyring),
// and the selection order with its sticky record.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import { EncryptedFileTokenStore } from '../../src/oauth/stores/encrypted-file.ts';
import { keyIdOf } from '../../src/oauth/stores/key-source.ts';
import { KeyringKeySource, type KeyringModule } from '../../src/oauth/stores/keyring-key-source.ts';
import {
  keyPaths,
  parseKeySourceKind,
  readRecordedKeySource,
  selectKeySource,
} from '../../src/oauth/stores/select-key-source.ts';
import { tempDir } from '../helpers/oidc.ts';

/** An in-memory keyring with the module's shape; `failWith` makes every call fail like a missing D-Bus. */
function fakeKeyring(options: { failWith?: string; dropWrites?: boolean } = {}) {
  const entries = new Map<string, string>();
  const constructed: unknown[] = [];
  const module: KeyringModule = {
    AsyncEntry: class {
      readonly #id: string;
      constructor(service: string, username: string, entryOptions?: unknown) {
        this.#id = `${service}\0${username}`;
        constructed.push(entryOptions);
      }
      async getPassword(): Promise<string | null> {
        if (options.failWith) throw new Error(options.failWith);
        return entries.get(this.#id) ?? null;
      }
      async setPassword(password: string): Promise<void> {
        if (options.failWith) throw new Error(options.failWith);
        if (!options.dropWrites) entries.set(this.#id, password);
      }
      async deleteCredential(): Promise<boolean> {
        return entries.delete(this.#id);
      }
    },
  };
  return { module, entries, constructed, load: async () => module };
}

const missingModule = async (): Promise<KeyringModule> => {
  throw Object.assign(new Error("Cannot find package '@napi-rs/keyring'"), { code: 'ERR_MODULE_NOT_FOUND' });
};

function expectKeyError(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(isPopgateError(error, 'ERR_TOKEN_STORE_KEY'), String(error));
    assert.match((error as Error).message, pattern);
    return true;
  };
}

describe('keyring key source', () => {
  test('the first use stores a random 256-bit key under service popgate, later uses read the same key', async () => {
    const fake = fakeKeyring();
    const first = await new KeyringKeySource({ entry: 'token-store:/d', load: fake.load }).getKey();
    assert.equal(first.key.length, 32);
    assert.equal(first.id, keyIdOf(first.key));
    assert.deepEqual([...fake.entries.keys()], ['popgate\0token-store:/d']);
    assert.equal(Buffer.from(fake.entries.get('popgate\0token-store:/d') ?? '', 'base64').length, 32);
    const again = await new KeyringKeySource({ entry: 'token-store:/d', load: fake.load }).getKey();
    assert.ok(again.key.equals(first.key));
  });

  test('the entry is pinned to the Secret Service, never the kernel keyring that forgets at logout', async () => {
    const fake = fakeKeyring();
    await new KeyringKeySource({ load: fake.load }).getKey();
    assert.deepEqual(fake.constructed[0], { linux: { store: 'secret-service' } });
  });

  test('a missing module makes the keyring unusable with a reason, and getKey a key error', async () => {
    const source = new KeyringKeySource({ load: missingModule });
    const probe = await source.probe();
    assert.equal(probe.usable, false);
    assert.match(probe.usable ? '' : probe.reason, /@napi-rs\/keyring is not installed/);
    await assert.rejects(source.getKey(), expectKeyError(/OS keyring cannot be used/));
  });

  test('an unreachable Secret Service makes the keyring unusable with the library reason', async () => {
    const fake = fakeKeyring({ failWith: 'Platform failure: DBus error: no bus' });
    const probe = await new KeyringKeySource({ load: fake.load }).probe();
    assert.deepEqual(probe, { usable: false, reason: 'Platform failure: DBus error: no bus' });
  });

  test('an entry that is not a 32-byte key is refused without showing its value', async () => {
    const fake = fakeKeyring();
    fake.entries.set('popgate\0token-store', 'c2hvcnQtc2VjcmV0LXZhbHVl');
    await assert.rejects(
      new KeyringKeySource({ load: fake.load }).getKey(),
      (error: unknown) =>
        expectKeyError(/does not hold a 32-byte base64 key/)(error) &&
        !(error as Error).message.includes('c2hvcnQtc2VjcmV0LXZhbHVl'),
    );
  });

  test('a keyring that accepts a write but does not keep it is an error, not a lost key', async () => {
    const fake = fakeKeyring({ dropWrites: true });
    await assert.rejects(
      new KeyringKeySource({ load: fake.load }).getKey(),
      expectKeyError(/did not keep the token key/),
    );
  });

  test('tokens written with the keyring key read back through a new source, and fail after forget', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const fake = fakeKeyring();
      const store = (source: KeyringKeySource) =>
        new EncryptedFileTokenStore({ dir: join(dir, 'tokens'), keySource: source });
      const tokens = {
        version: 1 as const,
        accessToken: 'access-token-value-1234567890',
        refreshToken: undefined,
        expiresAt: undefined,
        obtainedAt: 1,
        scopes: ['pop3'],
        stale: false,
      };
      await store(new KeyringKeySource({ load: fake.load })).set('work', tokens);
      assert.equal(store(new KeyringKeySource({ load: fake.load })).info().keySource, 'keyring');
      assert.equal(
        (await store(new KeyringKeySource({ load: fake.load })).get('work'))?.accessToken,
        tokens.accessToken,
      );
      assert.equal(await new KeyringKeySource({ load: fake.load }).forget(), true);
      await assert.rejects(
        store(new KeyringKeySource({ load: fake.load })).get('work'),
        expectKeyError(/wrong/),
      );
    } finally {
      await cleanup();
    }
  });
});

describe('key source selection', () => {
  test('on a fresh install a usable keyring is chosen, and remember() records it in a 0600 file', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const fake = fakeKeyring();
      const selection = await selectKeySource({
        dataDir: dir,
        keyring: new KeyringKeySource({ load: fake.load }),
      });
      assert.equal(selection.kind, 'keyring');
      assert.equal(selection.source.kind, 'keyring');
      assert.equal(selection.note, undefined);
      await selection.remember();
      assert.equal(await readRecordedKeySource(dir), 'keyring');
      assert.equal((await stat(keyPaths(dir).record)).mode & 0o777, 0o600);
    } finally {
      await cleanup();
    }
  });

  test('without a keyring the key file is used and the note says why', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const selection = await selectKeySource({
        dataDir: dir,
        keyringAbsentReason: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)',
      });
      assert.equal(selection.kind, 'file');
      assert.equal(selection.source.kind, 'key-file');
      assert.match(selection.note ?? '', /OS keyring is not usable \(no D-Bus session bus/);
      assert.match(selection.note ?? '', new RegExp(`key file ${keyPaths(dir).keyFile}`));
    } finally {
      await cleanup();
    }
  });

  test('a keyring module that cannot load falls back to the key file with the reason', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const selection = await selectKeySource({
        dataDir: dir,
        keyring: new KeyringKeySource({ load: missingModule }),
      });
      assert.equal(selection.kind, 'file');
      assert.match(selection.note ?? '', /@napi-rs\/keyring is not installed/);
    } finally {
      await cleanup();
    }
  });

  test('a recorded keyring that cannot be reached now is an error, and no key file is made', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(keyPaths(dir).record, 'keyring\n', { mode: 0o600 });
      const keyring = new KeyringKeySource({ load: fakeKeyring({ failWith: 'DBus error: no bus' }).load });
      await assert.rejects(
        selectKeySource({ dataDir: dir, keyring }),
        expectKeyError(/token key is in the OS keyring .*DBus error: no bus.*POPGATE_KEY_SOURCE=file/),
      );
      await assert.rejects(stat(keyPaths(dir).keyFile), { code: 'ENOENT' });
    } finally {
      await cleanup();
    }
  });

  test('an existing key file keeps being used even when a keyring appears', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(keyPaths(dir).keyFile, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
      const fake = fakeKeyring();
      const selection = await selectKeySource({
        dataDir: dir,
        keyring: new KeyringKeySource({ load: fake.load }),
      });
      assert.equal(selection.kind, 'file');
      assert.equal(fake.entries.size, 0);
    } finally {
      await cleanup();
    }
  });

  test('POPGATE_PASSPHRASE comes before the keyring, and a forced source before both', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const keyring = new KeyringKeySource({ load: fakeKeyring().load });
      assert.equal((await selectKeySource({ dataDir: dir, keyring, passphrase: 'pp' })).kind, 'passphrase');
      const forced = await selectKeySource({ dataDir: dir, keyring, passphrase: 'pp', force: 'file' });
      assert.equal(forced.kind, 'file');
      assert.equal(forced.reason, 'POPGATE_KEY_SOURCE=file');
      assert.equal((await selectKeySource({ dataDir: dir, keyring, force: 'keyring' })).kind, 'keyring');
    } finally {
      await cleanup();
    }
  });

  test('a forced keyring that cannot be used is an error naming the reason', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await assert.rejects(
        selectKeySource({ dataDir: dir, force: 'keyring', keyringAbsentReason: 'no D-Bus session bus' }),
        expectKeyError(/POPGATE_KEY_SOURCE=keyring, but the OS keyring cannot be used: no D-Bus session bus/),
      );
    } finally {
      await cleanup();
    }
  });

  test('a recorded passphrase is asked for (confirm only for a new salt), or named when nobody can be asked', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(keyPaths(dir).record, 'passphrase\n', { mode: 0o600 });
      await assert.rejects(selectKeySource({ dataDir: dir }), expectKeyError(/set POPGATE_PASSPHRASE/));
      const asked: boolean[] = [];
      const askPassphrase = async ({ confirm }: { confirm: boolean }) => {
        asked.push(confirm);
        return 'typed passphrase';
      };
      const first = await selectKeySource({ dataDir: dir, askPassphrase });
      assert.equal(first.kind, 'passphrase');
      await first.source.getKey();
      await selectKeySource({ dataDir: dir, askPassphrase });
      assert.deepEqual(asked, [true, false]);
    } finally {
      await cleanup();
    }
  });

  test('POPGATE_KEY_SOURCE takes keyring, file or passphrase, and names itself when wrong', () => {
    assert.equal(parseKeySourceKind(' Keyring ', 'POPGATE_KEY_SOURCE'), 'keyring');
    assert.throws(
      () => parseKeySourceKind('kwallet', 'POPGATE_KEY_SOURCE'),
      (error: unknown) =>
        isPopgateError(error, 'ERR_CONFIG_INVALID') &&
        /POPGATE_KEY_SOURCE must be one of keyring, file, passphrase/.test((error as Error).message),
    );
  });

  test('a corrupt record is an error that says what to do', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(keyPaths(dir).record, 'vault\n', { mode: 0o600 });
      await assert.rejects(selectKeySource({ dataDir: dir }), expectKeyError(/fix or delete it/));
      assert.equal(await readFile(keyPaths(dir).record, 'utf8'), 'vault\n');
    } finally {
      await cleanup();
    }
  });
});
