// One contract suite every token store passes, then what only the encrypted file store promises.
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isPopgateError } from '../../src/errors.ts';
import { EncryptedFileTokenStore } from '../../src/oauth/stores/encrypted-file.ts';
import { KeyFileSource, PassphraseKeySource } from '../../src/oauth/stores/key-source.ts';
import { KeyringKeySource, type KeyringModule } from '../../src/oauth/stores/keyring-key-source.ts';
import { MemoryTokenStore } from '../../src/oauth/stores/memory.ts';
import type { StoredTokens, TokenStore } from '../../src/oauth/stores/types.ts';
import { tempDir } from '../helpers/oidc.ts';

function record(n: number): StoredTokens {
  return {
    version: 1,
    accessToken: `access-${n}-${'a'.repeat(20)}`,
    refreshToken: `refresh-${n}-${'r'.repeat(20)}`,
    expiresAt: 1_000_000 + n,
    obtainedAt: 1_000,
    scopes: ['pop3', 'offline_access'],
    stale: false,
    flow: 'device',
    issuer: 'https://issuer.example',
    clientId: 'client',
  };
}

interface Fixture {
  store: TokenStore;
  cleanup: () => Promise<void>;
}

const factories: Record<string, () => Promise<Fixture>> = {
  memory: async () => ({ store: new MemoryTokenStore(), cleanup: async () => {} }),
  'encrypted file, key file': async () => {
    const { dir, cleanup } = await tempDir();
    const store = new EncryptedFileTokenStore({
      dir: join(dir, 'tokens'),
      keySource: new KeyFileSource(join(dir, 'key')),
    });
    return { store, cleanup };
  },
  'encrypted file, keyring (in-memory stand-in for @napi-rs/keyring)': async () => {
    const { dir, cleanup } = await tempDir();
    const entries = new Map<string, string>();
    const module: KeyringModule = {
      AsyncEntry: class {
        readonly #id: string;
        constructor(service: string, user: string) {
          this.#id = `${service}/${user}`;
        }
        getPassword = async () => entries.get(this.#id) ?? null;
        setPassword = async (value: string) => void entries.set(this.#id, value);
        deleteCredential = async () => entries.delete(this.#id);
      },
    };
    const keySource = new KeyringKeySource({ load: async () => module });
    return { store: new EncryptedFileTokenStore({ dir: join(dir, 'tokens'), keySource }), cleanup };
  },
  'encrypted file, passphrase': async () => {
    const { dir, cleanup } = await tempDir();
    const keySource = new PassphraseKeySource('correct horse battery staple', join(dir, 'salt'));
    return { store: new EncryptedFileTokenStore({ dir: join(dir, 'tokens'), keySource }), cleanup };
  },
};

for (const [name, make] of Object.entries(factories)) {
  describe(`token store contract: ${name}`, () => {
    test('an account without tokens reads as undefined', async () => {
      const { store, cleanup } = await make();
      try {
        assert.equal(await store.get('nobody'), undefined);
      } finally {
        await cleanup();
      }
    });

    test('what is set is read back field for field', async () => {
      const { store, cleanup } = await make();
      try {
        await store.set('work', record(1));
        assert.deepEqual({ ...(await store.get('work')) }, { ...record(1) });
      } finally {
        await cleanup();
      }
    });

    test('set replaces the previous record and accounts stay apart', async () => {
      const { store, cleanup } = await make();
      try {
        await store.set('work', record(1));
        await store.set('home', record(2));
        await store.set('work', record(3));
        assert.equal((await store.get('work'))?.accessToken, record(3).accessToken);
        assert.equal((await store.get('home'))?.accessToken, record(2).accessToken);
        assert.deepEqual(await store.list(), ['home', 'work']);
      } finally {
        await cleanup();
      }
    });

    test('delete removes the record and reports whether there was one', async () => {
      const { store, cleanup } = await make();
      try {
        await store.set('work', record(1));
        assert.equal(await store.delete('work'), true);
        assert.equal(await store.delete('work'), false);
        assert.equal(await store.get('work'), undefined);
        assert.deepEqual(await store.list(), []);
      } finally {
        await cleanup();
      }
    });

    test('withLock runs one holder at a time per account', async () => {
      const { store, cleanup } = await make();
      try {
        let inside = 0;
        let maxInside = 0;
        await Promise.all(
          Array.from({ length: 8 }, () =>
            store.withLock('work', async () => {
              inside++;
              maxInside = Math.max(maxInside, inside);
              await new Promise((resolve) => setTimeout(resolve, 5));
              inside--;
            }),
          ),
        );
        assert.equal(maxInside, 1);
      } finally {
        await cleanup();
      }
    });

    test('an account name that is not a safe file name is refused', async () => {
      const { store, cleanup } = await make();
      try {
        await assert.rejects(store.get('../etc/passwd'), (e) => isPopgateError(e, 'ERR_CONFIG_INVALID'));
        await assert.rejects(store.set('a/b', record(1)), (e) => isPopgateError(e, 'ERR_CONFIG_INVALID'));
      } finally {
        await cleanup();
      }
    });
  });
}

describe('encrypted file token store', () => {
  async function fileStore(passphrase?: string) {
    const { dir, cleanup } = await tempDir();
    const tokens = join(dir, 'tokens');
    const keySource = passphrase
      ? new PassphraseKeySource(passphrase, join(dir, 'salt'))
      : new KeyFileSource(join(dir, 'key'));
    return { dir, tokens, store: new EncryptedFileTokenStore({ dir: tokens, keySource }), cleanup };
  }

  test('files are 0600 in a 0700 directory and hold no token in plain text', async () => {
    const { dir, tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      assert.equal((await stat(tokens)).mode & 0o777, 0o700);
      assert.equal((await stat(join(tokens, 'work.token'))).mode & 0o777, 0o600);
      assert.equal((await stat(join(dir, 'key'))).mode & 0o777, 0o600);
      for (const file of await readdir(tokens)) {
        const text = await readFile(join(tokens, file), 'utf8');
        assert.ok(!text.includes(record(1).accessToken));
        assert.ok(!text.includes(record(1).refreshToken as string));
        assert.ok(!text.includes('access-1'));
      }
    } finally {
      await cleanup();
    }
  });

  test('every write uses a fresh nonce', async () => {
    const { tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      const first = JSON.parse(await readFile(join(tokens, 'work.token'), 'utf8'));
      await store.set('work', record(1));
      const second = JSON.parse(await readFile(join(tokens, 'work.token'), 'utf8'));
      assert.notEqual(first.iv, second.iv);
      assert.notEqual(first.ct, second.ct);
    } finally {
      await cleanup();
    }
  });

  test('a flipped byte in the ciphertext is reported as tampering, never decrypted', async () => {
    const { tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      const file = join(tokens, 'work.token');
      const envelope = JSON.parse(await readFile(file, 'utf8'));
      const ct = Buffer.from(envelope.ct, 'base64url');
      const at = Math.floor(ct.length / 2);
      ct.writeUInt8((ct.readUInt8(at) ^ 0x01) & 0xff, at);
      envelope.ct = ct.toString('base64url');
      await writeFile(file, JSON.stringify(envelope), { mode: 0o600 });
      await assert.rejects(store.get('work'), (e) => isPopgateError(e, 'ERR_TOKEN_STORE_TAMPERED'));
    } finally {
      await cleanup();
    }
  });

  test('a file swapped in from another account fails authentication', async () => {
    const { tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      await store.set('home', record(2));
      await rename(join(tokens, 'home.token'), join(tokens, 'work.token'));
      await assert.rejects(store.get('work'), (e) => isPopgateError(e, 'ERR_TOKEN_STORE_TAMPERED'));
    } finally {
      await cleanup();
    }
  });

  test('a token file readable by others is refused', async () => {
    const { tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      await chmod(join(tokens, 'work.token'), 0o644);
      await assert.rejects(store.get('work'), (e) => isPopgateError(e, 'ERR_TOKEN_STORE_PERMISSIONS'));
    } finally {
      await cleanup();
    }
  });

  test('a token directory open to others is refused', async () => {
    const { tokens, store, cleanup } = await fileStore();
    try {
      await store.set('work', record(1));
      await chmod(tokens, 0o755);
      await assert.rejects(store.get('work'), (e) => isPopgateError(e, 'ERR_TOKEN_STORE_PERMISSIONS'));
      await assert.rejects(store.set('work', record(2)), (e) =>
        isPopgateError(e, 'ERR_TOKEN_STORE_PERMISSIONS'),
      );
    } finally {
      await cleanup();
    }
  });

  test('a wrong passphrase is a clear key error and deletes nothing', async () => {
    const { dir, tokens, store, cleanup } = await fileStore('right passphrase');
    try {
      await store.set('work', record(1));
      const before = await readFile(join(tokens, 'work.token'), 'utf8');
      const wrong = new EncryptedFileTokenStore({
        dir: tokens,
        keySource: new PassphraseKeySource('wrong passphrase', join(dir, 'salt')),
      });
      await assert.rejects(wrong.get('work'), (e) => {
        assert.ok(isPopgateError(e, 'ERR_TOKEN_STORE_KEY'));
        assert.match((e as Error).message, /wrong passphrase/);
        return true;
      });
      assert.equal(await readFile(join(tokens, 'work.token'), 'utf8'), before);
      assert.deepEqual(await store.get('work'), record(1));
    } finally {
      await cleanup();
    }
  });

  test('an empty passphrase is refused', () => {
    assert.throws(
      () => new PassphraseKeySource('', '/nonexistent/salt'),
      (e) => isPopgateError(e, 'ERR_TOKEN_STORE_KEY'),
    );
  });
});
