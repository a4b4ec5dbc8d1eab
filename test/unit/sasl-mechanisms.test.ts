import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPopgateError, SaslError } from '../../src/errors.ts';
import {
  buildOAuthErrorChallenge,
  decodeOAuthBearer,
  decodePlain,
  decodeXOAuth2,
  encodeOAuthBearer,
  encodePlain,
  encodeXOAuth2,
  errorChallengeAnswer,
  escapeSaslName,
  parseOAuthErrorChallenge,
  toSaslMechanism,
  unescapeSaslName,
} from '../../src/sasl/index.ts';

const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/=';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const tokenArb = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,200}=*$/);
const userArb = fc.string({ minLength: 1, maxLength: 40 }).filter((u) => !/[\x00-\x1f\x7f]/.test(u));

test('XOAUTH2 encodes the Google/Microsoft format', () => {
  const wire = Buffer.from(encodeXOAuth2({ user: 'a@example.com', token }), 'base64').toString();
  assert.equal(wire, `user=a@example.com\x01auth=Bearer ${token}\x01\x01`);
});

test('XOAUTH2 encode/decode round-trips', () => {
  fc.assert(
    fc.property(userArb, tokenArb, (user, tok) => {
      assert.deepEqual(decodeXOAuth2(encodeXOAuth2({ user, token: tok })), { user, token: tok });
    }),
  );
});

test('OAUTHBEARER encodes the RFC 7628 §3.1 format with host and port', () => {
  const wire = Buffer.from(
    encodeOAuthBearer({ user: 'a@example.com', token, host: 'mail.example.com', port: 995 }),
    'base64',
  ).toString();
  assert.equal(
    wire,
    `n,a=a@example.com,\x01host=mail.example.com\x01port=995\x01auth=Bearer ${token}\x01\x01`,
  );
});

test('OAUTHBEARER escapes "," and "=" in the authzid', () => {
  assert.equal(escapeSaslName('a,b=c'), 'a=2Cb=3Dc');
  const wire = Buffer.from(encodeOAuthBearer({ user: 'we,ird=name', token }), 'base64').toString();
  assert.ok(wire.startsWith('n,a=we=2Cird=3Dname,\x01'));
  assert.equal(decodeOAuthBearer(b64(wire)).user, 'we,ird=name');
  assert.throws(
    () => unescapeSaslName('a=2'),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
  assert.throws(
    () => unescapeSaslName('a,b'),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
});

test('OAUTHBEARER encode/decode round-trips for any user', () => {
  fc.assert(
    fc.property(
      userArb,
      tokenArb,
      fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      (u, t, p) => {
        const decoded = decodeOAuthBearer(
          encodeOAuthBearer(p === undefined ? { user: u, token: t } : { user: u, token: t, port: p }),
        );
        assert.equal(decoded.user, u);
        assert.equal(decoded.token, t);
        assert.equal(decoded.port, p);
      },
    ),
  );
});

test('OAUTHBEARER decode is strict', () => {
  const bad = [
    `p=tls-unique,a=u,\x01auth=Bearer ${token}\x01\x01`, // channel binding
    `n,u,\x01auth=Bearer ${token}\x01\x01`, // authzid without a=
    `n,a=u,auth=Bearer ${token}\x01\x01`, // missing kvsep
    `n,a=u,\x01auth=Bearer ${token}\x01`, // missing final kvsep
    'n,a=u,\x01host=x\x01\x01', // no auth
    `n,a=u,\x01auth=Basic abc\x01\x01`, // not bearer
    `n,a=u,\x01auth=Bearer ${token}\x01auth=Bearer ${token}\x01\x01`, // repeated
    `n,a=u,\x01auth=Bearer a b\x01\x01`, // token with space
  ];
  for (const text of bad) {
    assert.throws(
      () => decodeOAuthBearer(b64(text)),
      (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
      JSON.stringify(text),
    );
  }
  assert.throws(
    () => decodeOAuthBearer('not base64!'),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
  assert.throws(
    () => decodeOAuthBearer('A'.repeat(100), 64),
    (e) => isPopgateError(e, 'ERR_SASL_TOO_LARGE'),
  );
});

test('PLAIN encode/decode round-trips and refuses NUL in fields', () => {
  assert.deepEqual(decodePlain(encodePlain({ user: 'u', password: 'p w' })), {
    authzid: '',
    user: 'u',
    password: 'p w',
  });
  assert.throws(
    () => encodePlain({ user: 'u\0', password: 'p' }),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
  assert.throws(
    () => decodePlain(b64('a\0b')),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
});

test('a token that could break the framing is refused without being echoed', () => {
  const evil = 'abc\x01user=root';
  try {
    encodeXOAuth2({ user: 'u', token: evil });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof SaslError);
    assert.ok(!err.message.includes(evil));
  }
});

test('random input to the server-side decoders only ever throws typed SaslErrors', () => {
  const decoders = [decodeXOAuth2, decodeOAuthBearer, decodePlain, parseOAuthErrorChallenge];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')),
        fc.string().map(b64),
      ),
      (input) => {
        for (const decode of decoders) {
          try {
            decode(input);
          } catch (err) {
            assert.ok(err instanceof SaslError, String(err));
            assert.match(err.code, /^ERR_SASL_(MALFORMED|TOO_LARGE)$/);
          }
        }
      },
    ),
  );
});

test('the RFC 7628 error challenge builds and parses, Google format included', () => {
  const built = buildOAuthErrorChallenge({
    status: 'invalid_token',
    scope: 'pop',
    'openid-configuration': 'https://as.example/.well-known/openid-configuration',
  });
  assert.deepEqual(parseOAuthErrorChallenge(built), {
    status: 'invalid_token',
    scope: 'pop',
    'openid-configuration': 'https://as.example/.well-known/openid-configuration',
  });
  assert.deepEqual(
    parseOAuthErrorChallenge(b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')),
    {
      status: '401',
      schemes: 'bearer',
      scope: 'https://mail.google.com/',
    },
  );
  assert.throws(
    () => parseOAuthErrorChallenge(b64('[1]')),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
  assert.throws(
    () => parseOAuthErrorChallenge(b64('{}')),
    (e) => isPopgateError(e, 'ERR_SASL_MALFORMED'),
  );
});

test('the client answers an error challenge with %x01 (OAUTHBEARER) or an empty line (XOAUTH2)', () => {
  assert.equal(errorChallengeAnswer('OAUTHBEARER'), 'AQ==');
  assert.equal(errorChallengeAnswer('XOAUTH2'), '');
});

test('mechanism names normalise and unknown ones are ERR_SASL_MECHANISM', () => {
  assert.equal(toSaslMechanism('xoauth2'), 'XOAUTH2');
  assert.throws(
    () => toSaslMechanism('CRAM-MD5'),
    (e) => isPopgateError(e, 'ERR_SASL_MECHANISM'),
  );
});
