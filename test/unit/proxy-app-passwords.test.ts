// The proxy's app-password file: random passwords shown once and stored only as scrypt hashes
// (0600, atomic), several per account, verified in constant time, revoked at once.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { AppPasswordStore, normalizeAppPassword } from '../../src/proxy/app-passwords.ts';

async function store(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-apppw-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'proxy', 'app-passwords.json');
  return { dir, file, passwords: new AppPasswordStore({ file }) };
}

test('an added app password verifies, and the file holds only its scrypt hash, mode 0600', async (t) => {
  const { file, passwords } = await store(t);
  const created = await passwords.add('work', 'phone');
  recordTestSecret(created.password);
  recordTestSecret(created.password.replaceAll('-', ''));
  assert.match(created.password, /^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);
  assert.equal(created.id, created.password.slice(0, 4));
  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes(created.password.replaceAll('-', '').slice(4)), 'no part of the secret is stored');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(join(file, '..'))).mode & 0o777, 0o700);
  const entry = JSON.parse(text).passwords[0];
  assert.deepEqual([entry.kdf, entry.N, entry.r, entry.p], ['scrypt', 8192, 8, 1]);
  assert.deepEqual(await passwords.verify('work', created.password), {
    id: created.id,
    account: 'work',
    label: 'phone',
    created: created.created,
  });
  // Dashes, spaces and case do not matter.
  const typed = created.password.replaceAll('-', ' ').toUpperCase();
  assert.equal((await passwords.verify('work', typed))?.id, created.id);
});

test('a wrong password, another account, or garbage does not verify', async (t) => {
  const { passwords } = await store(t);
  const created = await passwords.add('work');
  recordTestSecret(created.password);
  const clean = normalizeAppPassword(created.password)!;
  const flipped = `${clean.slice(0, 23)}${clean[23] === 'a' ? 'b' : 'a'}`;
  assert.equal(await passwords.verify('work', flipped), undefined);
  assert.equal(await passwords.verify('home', created.password), undefined);
  assert.equal(await passwords.verify('work', 'hunter2'), undefined);
  assert.equal(await passwords.verify(undefined, created.password), undefined);
});

test('several passwords per account verify independently; revoking one stops it at once', async (t) => {
  const { file, passwords } = await store(t);
  const phone = await passwords.add('work', 'phone');
  const laptop = await passwords.add('work', 'laptop');
  for (const p of [phone, laptop]) recordTestSecret(p.password);
  assert.equal((await passwords.list('work')).length, 2);
  const gone = await passwords.revoke('work', 'phone');
  assert.deepEqual(
    gone.map((p) => p.id),
    [phone.id],
  );
  // A second store on the same file (another process) sees the revocation at the next verify.
  const other = new AppPasswordStore({ file });
  assert.equal(await other.verify('work', phone.password), undefined);
  assert.equal((await other.verify('work', laptop.password))?.label, 'laptop');
  await assert.rejects(passwords.revoke('work', 'phone'), { code: 'ERR_PROXY_PASSWORD_UNKNOWN' });
});

test('concurrent adds from two stores keep every password (the file is updated under a lock)', async (t) => {
  const { file } = await store(t);
  const a = new AppPasswordStore({ file });
  const b = new AppPasswordStore({ file });
  const created = await Promise.all([
    a.add('work', 'one'),
    b.add('work', 'two'),
    a.add('work', 'three'),
    b.add('home', 'four'),
  ]);
  for (const c of created) recordTestSecret(c.password);
  assert.equal((await a.list()).length, 4);
  for (const c of created) assert.ok(await a.verify(c.account, c.password), c.label);
});

test('a file readable by others is refused, naming the fix', async (t) => {
  const { file, passwords } = await store(t);
  recordTestSecret((await passwords.add('work')).password);
  const { chmod } = await import('node:fs/promises');
  await chmod(file, 0o644);
  await assert.rejects(passwords.verify('work', 'x'), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'ERR_PROXY_PASSWORD_FILE');
    assert.match(error.message, /chmod 600/);
    return true;
  });
});

test('a corrupt file is an error, not an empty list', async (t) => {
  const { file, passwords } = await store(t);
  recordTestSecret((await passwords.add('work')).password);
  await writeFile(file, '{"version":1,"passwords":[{"id":1}]}', { mode: 0o600 });
  await assert.rejects(passwords.list(), { code: 'ERR_PROXY_PASSWORD_FILE' });
});
