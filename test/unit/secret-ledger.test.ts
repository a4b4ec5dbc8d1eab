// The secret scan of the test run (issue 3) cannot pass vacuously: the mints record what they
// issue, and the scanner finds a planted secret in every form it looks for, across chunk
// boundaries, while ignoring values too short to mean anything.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAuthorizationServer } from '../../dev/authorization-server/index.ts';
import { createSigningKey } from '../../dev/jwt-keys.ts';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { tempDir } from '../helpers/oidc.ts';
import {
  createSecretScanner,
  type Finding,
  MIN_SECRET_LENGTH,
  needlesFor,
  scanForSecrets,
} from '../helpers/secret-scan.mjs';

let work: { dir: string; cleanup: () => Promise<void> };
const runLedger = process.env.POPGATE_SECRET_LEDGER;

before(async () => {
  work = await tempDir('popgate-secret-scan-test-');
});
after(async () => {
  await work.cleanup();
});

/** Runs `body` with the ledger pointed at a fresh file of this test; returns its lines. */
async function withLedger(name: string, body: () => Promise<void>): Promise<string[]> {
  const path = join(work.dir, name);
  process.env.POPGATE_SECRET_LEDGER = path;
  try {
    await body();
  } finally {
    if (runLedger === undefined) delete process.env.POPGATE_SECRET_LEDGER;
    else process.env.POPGATE_SECRET_LEDGER = runLedger;
  }
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean);
}

function scanString(ledger: string[], text: string): Finding[] {
  const found: Finding[] = [];
  createSecretScanner(ledger).scanText(text, 0, (needle, start) => {
    found.push({ ledgerLine: needle.line, form: needle.form, file: '', offset: start, line: 0 });
  });
  return found;
}

const secret = () => randomBytes(30).toString('base64url');

describe('the secret ledger', () => {
  test('recordTestSecret appends one secret a line to a 0600 file', async () => {
    const a = secret();
    const b = secret();
    const lines = await withLedger('append', async () => {
      recordTestSecret(a);
      recordTestSecret(b);
    });
    assert.deepEqual(lines, [a, b]);
    assert.equal((await stat(join(work.dir, 'append'))).mode & 0o777, 0o600);
  });

  test('recordTestSecret does nothing while POPGATE_SECRET_LEDGER is unset or empty', async () => {
    const kept = secret();
    const lines = await withLedger('unset', async () => {
      recordTestSecret(kept);
      process.env.POPGATE_SECRET_LEDGER = '';
      recordTestSecret(secret());
      delete process.env.POPGATE_SECRET_LEDGER;
      recordTestSecret(secret());
    });
    assert.deepEqual(lines, [kept]);
  });

  test('the authorization server records the access token and client secret a client receives', async () => {
    let accessToken = '';
    let clientSecret = '';
    const lines = await withLedger('issued', async () => {
      const as = await startAuthorizationServer({ accessTokenTtl: 60 });
      try {
        const { clientId, clientSecret: s } = as.clients.secretBasic;
        clientSecret = s;
        const response = await fetch(`${as.issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${clientId}:${s}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'pop3' }).toString(),
        });
        assert.equal(response.status, 200);
        accessToken = ((await response.json()) as { access_token: string }).access_token;
      } finally {
        await as.stop();
      }
    });
    assert.ok(accessToken.length > 100, 'a JWT access token');
    assert.ok(lines.includes(accessToken), 'the access token is in the ledger');
    assert.ok(lines.includes(clientSecret), 'the client secret is in the ledger');
  });

  test('a dev signing key records every token it signs, and its HMAC secret', async () => {
    let token = '';
    let hmac = '';
    const lines = await withLedger('signed', async () => {
      const key = await createSigningKey({ alg: 'HS256' });
      hmac = key.verificationKey;
      token = await key.sign({ sub: 'alice@example.test' });
    });
    assert.deepEqual(lines, [hmac, token]);
  });
});

describe('the secret scanner', () => {
  test('finds a planted secret and names its ledger line, never the secret', async () => {
    const ledger = [secret(), secret(), secret()];
    const file = join(work.dir, 'planted.log');
    await writeFile(file, `line one\nline two has ${ledger[1]} in it\n`);
    const result = scanForSecrets(ledger, [file]);
    assert.equal(result.secrets, 3);
    assert.deepEqual(
      result.findings.map((f) => [f.ledgerLine, f.form, f.line, f.offset]),
      [[2, 'exact', 2, 22]],
    );
    assert.ok(!JSON.stringify(result).includes(ledger[1]!));
  });

  test('finds the signature part of a JWT alone', async () => {
    const key = await createSigningKey({ alg: 'ES256' });
    const jwt = await key.sign({ sub: 'alice@example.test' });
    const signature = jwt.split('.')[2]!;
    const found = scanString(['unrelated-secret-value-123456', jwt], `error: bad signature ${signature}\n`);
    assert.deepEqual(
      found.map((f) => [f.ledgerLine, f.form]),
      [[2, 'jwt-signature']],
    );
  });

  test('finds a token inside a base64 SASL line at every alignment', () => {
    const token = secret();
    for (const user of ['a', 'ab', 'abc']) {
      const line = `AUTH XOAUTH2 ${Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64')}`;
      assert.ok(!line.includes(token));
      const forms = scanString([token], line).map((f) => f.form);
      assert.ok(forms.includes('base64'), `user ${user}: ${forms}`);
    }
  });

  test('ignores values shorter than 16 characters, even when they appear', () => {
    const short = 'abc123XYZ-_.'.slice(0, MIN_SECRET_LENGTH - 4);
    assert.deepEqual(needlesFor(short), []);
    const scanner = createSecretScanner([short, 'x'.repeat(MIN_SECRET_LENGTH - 1)]);
    assert.equal(scanner.secrets, 0);
    assert.equal(scanner.ignored, 2);
    assert.deepEqual(scanString([short], `the value ${short} is printed`), []);
  });

  test('finds nothing in output that holds other tokens', () => {
    const text = Array.from({ length: 200 }, () => `token ${secret()} refreshed`).join('\n');
    assert.deepEqual(scanString([secret(), secret()], text), []);
  });

  test('finds a secret across a chunk boundary once, with its byte offset and line', async () => {
    const ledger = [secret(), secret()];
    const chunk = 8 * 1024 * 1024;
    const fill = `${'log line without secrets\n'.repeat(Math.ceil(chunk / 25))}`.slice(0, chunk - 10);
    const file = join(work.dir, 'big.log');
    const before = `${fill}${ledger[0]}\n`;
    await writeFile(file, `${before}tail ${ledger[1]}\n`);
    const result = scanForSecrets(ledger, [file]);
    const newlines = (fill.match(/\n/g) ?? []).length;
    assert.deepEqual(
      result.findings.map((f) => [f.ledgerLine, f.form, f.offset, f.line]),
      [
        [1, 'exact', chunk - 10, newlines + 1],
        [2, 'exact', before.length + 5, newlines + 2],
      ],
    );
    assert.equal(result.bytes, before.length + 5 + 40 + 1);
  });
});
