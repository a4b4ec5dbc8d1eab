// The shared rules of src/internal/ that have no other direct test: Maildir host escaping, the
// CRLF<->LF conversion, the capped body reader and the options checker.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { CrlfToLf, crlfToLf, lfToCrlf } from '../../src/internal/crlf.ts';
import { readCappedBody } from '../../src/internal/http-body.ts';
import { maildirHost, parseOwnName, uniqueName } from '../../src/internal/maildir-name.ts';
import { OptionsChecker } from '../../src/internal/options.ts';

test('a Maildir host part escapes / and : as the spec says, and keeps dots', () => {
  assert.equal(maildirHost('mail.example.org'), 'mail.example.org');
  assert.equal(maildirHost('a/b:c'), 'a\\057b\\072c');
  assert.equal(maildirHost(''), 'localhost');
});

test('a new Maildir name is recognised as ours, with its pid and host', () => {
  const name = uniqueName();
  assert.deepEqual(parseOwnName(name), { pid: process.pid, host: maildirHost() });
  assert.equal(parseOwnName('1700000000.M1P2Q3.otherhost'), undefined);
});

test('CRLF to LF and back follow Dovecot: a lone CR stays, any split gives the same output', () => {
  const wire = Buffer.from('a\r\nb\rc\r\n\r\nd\r');
  const local = crlfToLf(wire);
  assert.equal(local.toString(), 'a\nb\rc\n\nd\r');
  assert.equal(lfToCrlf(local).toString(), 'a\r\nb\rc\r\n\r\nd\r');
  for (let cut = 0; cut <= wire.length; cut++) {
    const convert = new CrlfToLf();
    const out = Buffer.concat([
      convert.feed(wire.subarray(0, cut)),
      convert.feed(wire.subarray(cut)),
      convert.end(),
    ]);
    assert.deepEqual(out, local, `split at ${cut}`);
  }
});

test('the capped body reader returns the body up to the cap and fails past it', async () => {
  const body = () => Readable.from([Buffer.alloc(600), Buffer.alloc(424)]);
  assert.equal((await readCappedBody(body(), 1024, () => new Error('big'))).length, 1024);
  await assert.rejects(
    readCappedBody(body(), 1023, () => new Error('big')),
    /big/,
  );
  const web = new Response(Buffer.alloc(2048)).body;
  await assert.rejects(
    readCappedBody(web, 1024, () => new Error('web big')),
    /web big/,
  );
  assert.equal((await readCappedBody(null, 1, () => new Error('x'))).length, 0);
});

test('the options checker names the key and suggests the closest known one', () => {
  const check = new OptionsChecker({
    invalid: (key, what) => `option ${key} ${what}`,
    unknown: (key, hint) => `unknown option ${key}${hint}`,
  });
  assert.throws(() => check.knownKeys({ prot: 1 }, ['port', 'host']), {
    code: 'ERR_CONFIG_UNKNOWN_KEY',
    key: 'prot',
    message: 'unknown option prot (did you mean "port"?)',
  });
  assert.throws(() => check.knownKeys({ zzzzzz: 1 }, ['port']), { message: 'unknown option zzzzzz' });
  assert.throws(() => check.integer(70000, 'port', { min: 1, max: 65535 }), {
    code: 'ERR_CONFIG_INVALID',
    key: 'port',
    message: 'option port must be an integer from 1 to 65535',
  });
  assert.equal(check.integer(undefined, 'port', { min: 1 }, 995), 995);
  assert.throws(() => check.integer(1.5, 'n', { min: 0 }), { key: 'n' });
  assert.throws(() => check.oneOf('x', 'tls', ['a', 'b'], 'a'), { message: 'option tls must be "a" or "b"' });
  assert.throws(() => check.boolean('yes', 'flag', false), { key: 'flag' });
  assert.throws(() => check.string('a\nb', 's'), { key: 's' });
});
