import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isPopgateError } from '../../src/errors.ts';
import {
  classifyResponseCode,
  formatStatusLine,
  MultilineCollector,
  parseCapabilities,
  parseCommandLine,
  parseResponseLine,
  parseScanListing,
  parseStatusLine,
  parseUniqueIdListing,
  REDACTED,
  redactCommandLine,
  resolveLimits,
  serializeCapabilities,
  serializeCommand,
  serializeSaslLine,
} from '../../src/protocol/index.ts';

test('status lines parse +OK and -ERR with an RFC 2449 response code', () => {
  assert.deepEqual(parseStatusLine('+OK 2 320'), { kind: 'ok', code: undefined, text: '2 320' });
  assert.deepEqual(parseStatusLine('-ERR [SYS/TEMP] try later'), {
    kind: 'err',
    code: 'SYS/TEMP',
    text: 'try later',
  });
  assert.deepEqual(parseStatusLine('-ERR [auth]'), { kind: 'err', code: 'AUTH', text: '' });
  assert.deepEqual(parseStatusLine('+OK'), { kind: 'ok', code: undefined, text: '' });
});

test('a bracket that is not at the start of the text is not a response code', () => {
  assert.equal(parseStatusLine('-ERR no [AUTH] here').code, undefined);
});

test('unknown response codes are kept and classified by their known parent', () => {
  assert.equal(parseStatusLine('-ERR [SYS/TEMP/QUOTA] x').code, 'SYS/TEMP/QUOTA');
  assert.equal(classifyResponseCode('SYS/TEMP/QUOTA'), 'SYS/TEMP');
  assert.equal(classifyResponseCode('X-VENDOR'), undefined);
  assert.equal(classifyResponseCode('IN-USE'), 'IN-USE');
});

test('a continuation is recognised only when asked for', () => {
  assert.deepEqual(parseResponseLine('+ eyJ9', { allowContinuation: true }), {
    kind: 'continue',
    challenge: 'eyJ9',
  });
  assert.deepEqual(parseResponseLine('+', { allowContinuation: true }), { kind: 'continue', challenge: '' });
  assert.throws(
    () => parseResponseLine('+ eyJ9'),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
});

test('anything that is not a status line is ERR_POP3_PROTOCOL, for any input', () => {
  assert.throws(
    () => parseStatusLine('HTTP/1.1 400'),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
  assert.throws(
    () => parseStatusLine('+OKAY'),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        const r = parseResponseLine(Buffer.from(bytes), { allowContinuation: true });
        if (r.kind !== 'continue') assert.ok(!/[\r\n\0]/.test(r.text));
      } catch (err) {
        assert.ok(isPopgateError(err, 'ERR_POP3_PROTOCOL'), String(err));
      }
    }),
  );
});

test('formatStatusLine round-trips through the parser and refuses CR/LF', () => {
  assert.equal(formatStatusLine('err', 'locked', 'IN-USE'), '-ERR [IN-USE] locked\r\n');
  assert.deepEqual(parseStatusLine(formatStatusLine('err', 'locked', 'IN-USE').trimEnd()), {
    kind: 'err',
    code: 'IN-USE',
    text: 'locked',
  });
  assert.throws(
    () => formatStatusLine('ok', 'a\r\n+OK'),
    (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
  );
});

test('the serializer refuses CR, LF and NUL in any argument (no command injection)', () => {
  fc.assert(
    fc.property(fc.string(), fc.constantFrom('\r', '\n', '\0'), fc.string(), (a, bad, b) => {
      assert.throws(
        () => serializeCommand('USER', [`${a}${bad}${b}`]),
        (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
      );
    }),
  );
});

test('the serializer refuses bad verbs, empty arguments, and lines over the limit', () => {
  for (const verb of ['', 'RE', 'RETRX', 'RE T', 'R3TR']) {
    assert.throws(
      () => serializeCommand(verb),
      (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
    );
  }
  assert.throws(
    () => serializeCommand('LIST', ['']),
    (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => serializeCommand('TOP', ['1 2', '3']),
    (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => serializeCommand('AUTH', ['XOAUTH2', 'a'.repeat(300)]),
    (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
  );
  assert.equal(serializeCommand('retr', ['1']).toString(), 'RETR 1\r\n');
});

test('a refused secret argument is never echoed in the error', () => {
  const secret = 'hunter2-secret-value';
  try {
    serializeCommand('PASS', [`${secret}\r\nDELE 1`]);
    assert.fail('should throw');
  } catch (err) {
    assert.ok(!String((err as Error).message).includes(secret));
    assert.ok(!JSON.stringify(err).includes(secret));
  }
});

test('SASL lines must be base64, "*" or empty', () => {
  assert.equal(serializeSaslLine('AQ==').toString(), 'AQ==\r\n');
  assert.equal(serializeSaslLine('').toString(), '\r\n');
  assert.equal(serializeSaslLine('*').toString(), '*\r\n');
  assert.throws(
    () => serializeSaslLine('abc\r\nQUIT'),
    (e) => isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT'),
  );
});

test('the server-side parser splits verb and arguments and keeps PASS whole', () => {
  assert.deepEqual(parseCommandLine('top 1 10'), { verb: 'TOP', args: ['1', '10'], rest: '1 10' });
  assert.equal(parseCommandLine('PASS with  spaces').rest, 'with  spaces');
  assert.throws(
    () => parseCommandLine('LIST  1'),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
  assert.throws(
    () => parseCommandLine('RE\0TR 1'),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
  assert.throws(
    () => parseCommandLine(`NOOP ${'x'.repeat(300)}`),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        parseCommandLine(Buffer.from(bytes));
      } catch (err) {
        assert.ok(isPopgateError(err, 'ERR_POP3_PROTOCOL'), String(err));
      }
    }),
  );
});

test('CAPA: every RFC 2449 tag is parsed and survives serialize/parse', () => {
  const lines = [
    'TOP',
    'USER',
    'SASL OAUTHBEARER xoauth2',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    'LOGIN-DELAY 900 USER',
    'PIPELINING',
    'EXPIRE NEVER',
    'UIDL',
    'IMPLEMENTATION Shlemazle Plotz v302',
    'STLS',
    'X-VENDOR a b',
  ];
  const caps = parseCapabilities(lines);
  assert.equal(caps.top && caps.user && caps.respCodes && caps.authRespCode && caps.pipelining, true);
  assert.equal(caps.uidl && caps.stls, true);
  assert.deepEqual(caps.sasl, ['OAUTHBEARER', 'XOAUTH2']);
  assert.deepEqual(caps.loginDelay, { seconds: 900, perUser: true });
  assert.deepEqual(caps.expire, { days: 'NEVER', perUser: false });
  assert.equal(caps.implementation, 'Shlemazle Plotz v302');
  assert.deepEqual(caps.other.get('X-VENDOR'), ['a', 'b']);
  const again = parseCapabilities(serializeCapabilities(caps));
  assert.deepEqual({ ...again, raw: [] }, { ...caps, raw: [] });
});

test('CAPA: an absent server gives an all-false model and bad numbers are ignored', () => {
  const caps = parseCapabilities(['LOGIN-DELAY soon', 'EXPIRE -1']);
  assert.equal(caps.loginDelay, undefined);
  assert.equal(caps.expire, undefined);
  assert.equal(caps.pipelining, false);
});

test('multi-line collector unstuffs, ends at the dot line and bounds the size', () => {
  const c = new MultilineCollector(100);
  assert.equal(c.push(Buffer.from('1 120')), false);
  assert.equal(c.push(Buffer.from('..x')), false);
  assert.equal(c.push(Buffer.from('.')), true);
  assert.deepEqual(c.lines, ['1 120', '.x']);
  const small = new MultilineCollector(10);
  assert.throws(
    () => small.push(Buffer.from('0123456789')),
    (e) => isPopgateError(e, 'ERR_POP3_RESPONSE_TOO_LARGE'),
  );
});

test('LIST and UIDL lines are validated', () => {
  assert.deepEqual(parseScanListing('3 1200'), { number: 3, size: 1200 });
  assert.deepEqual(parseUniqueIdListing('1 whqtswO00WBw418f9t5JxYwZ'), {
    number: 1,
    uid: 'whqtswO00WBw418f9t5JxYwZ',
  });
  for (const bad of ['0 12', 'a 1', '1', '1 -2']) {
    assert.throws(
      () => parseScanListing(bad),
      (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
    );
  }
  assert.throws(
    () => parseUniqueIdListing(`1 ${'u'.repeat(71)}`),
    (e) => isPopgateError(e, 'ERR_POP3_PROTOCOL'),
  );
});

test('redaction replaces PASS, AUTH initial responses and unknown arguments whole', () => {
  assert.equal(redactCommandLine('PASS s3cret\r\n'), `PASS ${REDACTED}`);
  assert.equal(redactCommandLine('AUTH XOAUTH2 dXNlcj1h'), `AUTH XOAUTH2 ${REDACTED}`);
  assert.equal(redactCommandLine('AUTH OAUTHBEARER'), 'AUTH OAUTHBEARER');
  assert.equal(redactCommandLine('XFOO secret'), `XFOO ${REDACTED}`);
  assert.equal(redactCommandLine('RETR 1'), 'RETR 1');
});

test('limits: unknown keys and bad values are refused by name', () => {
  assert.equal(resolveLimits({ maxLineLength: 1000 }).maxLineLength, 1000);
  assert.throws(
    () => resolveLimits({ maxLine: 1 } as never),
    (e) => isPopgateError(e, 'ERR_CONFIG_UNKNOWN_KEY'),
  );
  assert.throws(
    () => resolveLimits({ maxMessageSize: -1 }),
    (e) => isPopgateError(e, 'ERR_CONFIG_INVALID'),
  );
  assert.ok(Object.isFrozen(resolveLimits()));
});
