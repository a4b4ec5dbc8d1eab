import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { type TestContext, test } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../../src/client/index.ts';
import { isPopgateError, Pop3Error } from '../../src/errors.ts';
import type { Logger } from '../../src/observability/logger.ts';
import { buildOAuthErrorChallenge, decodeOAuthBearer, decodeXOAuth2 } from '../../src/sasl/index.ts';
import { type FakeSession, maildropScript, startFakePop3Server } from '../helpers/fake-pop3-server.ts';

const SECRET = 'ya29.SECRET-access-token-never-logged_0123456789';

async function connect(
  t: TestContext,
  on: (verb: string, args: string[], s: FakeSession) => Promise<boolean> | boolean,
  extra: Partial<Pop3ClientOptions> = {},
) {
  const server = await startFakePop3Server({ script: maildropScript({ messages: ['x\r\n'], on }) });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: server.host,
    port: server.port,
    tls: 'none-loopback-insecure',
    timeouts: { command: 5000 },
    ...extra,
  });
  t.after(() => client.close());
  await client.connect();
  return { server, client };
}

test('a short initial response goes inline with AUTH', async (t) => {
  const { server, client } = await connect(t, () => false);
  await client.authenticate({ mechanism: 'XOAUTH2', user: 'u@example.com', token: 'short' });
  const line = server.received.find((l) => l.startsWith('plain:AUTH'))!;
  assert.deepEqual(decodeXOAuth2(line.split(' ')[2]!), { user: 'u@example.com', token: 'short' });
});

test('an AUTH line over 255 octets is sent two-step: AUTH mech, +, then the response', async (t) => {
  const token = `${'a'.repeat(2000)}.${'b'.repeat(1500)}`;
  const { server, client } = await connect(t, () => false);
  await client.authenticate({ mechanism: 'OAUTHBEARER', user: 'u@example.com', token });
  const i = server.received.indexOf('plain:AUTH OAUTHBEARER');
  assert.ok(i >= 0);
  const decoded = decodeOAuthBearer(server.received[i + 1]!.slice('plain:'.length));
  assert.equal(decoded.token, token);
  assert.equal(decoded.user, 'u@example.com');
  assert.equal(decoded.port, server.port);
});

for (const [mechanism, answer] of [
  ['OAUTHBEARER', 'AQ=='],
  ['XOAUTH2', ''],
] as const) {
  test(`an RFC 7628 error challenge to ${mechanism} is answered with "${answer}" and decoded onto the error`, async (t) => {
    let clientAnswer: string | undefined;
    const { client } = await connect(t, async (verb, _args, s) => {
      if (verb !== 'AUTH') return false;
      s.write(
        `+ ${buildOAuthErrorChallenge({ status: 'invalid_token', scope: 'pop', 'openid-configuration': 'https://as.example/.well-known/openid-configuration' })}\r\n`,
      );
      clientAnswer = await s.readLine();
      s.write('-ERR [AUTH] Authentication failed.\r\n');
      return true;
    });
    await assert.rejects(
      client.authenticate({ mechanism, user: 'u', token: 'expired-token' }),
      (e) =>
        e instanceof Pop3Error &&
        e.code === 'ERR_POP3_AUTH_FAILED' &&
        e.responseCode === 'AUTH' &&
        e.saslError?.status === 'invalid_token' &&
        e.saslError?.scope === 'pop' &&
        e.saslError?.['openid-configuration'] === 'https://as.example/.well-known/openid-configuration',
    );
    assert.equal(clientAnswer, answer);
    assert.equal(client.state, 'authorization');
  });
}

test('with a token provider, an [AUTH] refusal asks once for a fresh token and retries once', async (t) => {
  const calls: boolean[] = [];
  let attempts = 0;
  const { client } = await connect(t, (verb, args, s) => {
    if (verb !== 'AUTH') return false;
    attempts++;
    const { token } = decodeXOAuth2(args[1]!);
    s.write(token === 'fresh' ? '+OK\r\n' : '-ERR [AUTH] expired\r\n');
    return true;
  });
  await client.authenticate({
    mechanism: 'XOAUTH2',
    user: 'u',
    token: async ({ forceRefresh }) => {
      calls.push(forceRefresh);
      return forceRefresh ? 'fresh' : 'stale';
    },
  });
  assert.deepEqual(calls, [false, true]);
  assert.equal(attempts, 2);
  assert.equal(client.state, 'transaction');
});

test('the retry happens only once: a second [AUTH] refusal is the final error', async (t) => {
  let attempts = 0;
  const { client } = await connect(t, (verb, _args, s) => {
    if (verb !== 'AUTH') return false;
    attempts++;
    s.write('-ERR [AUTH] no\r\n');
    return true;
  });
  await assert.rejects(
    client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: async () => 'tok' }),
    (e) => isPopgateError(e, 'ERR_POP3_AUTH_FAILED'),
  );
  assert.equal(attempts, 2);
});

for (const [code, errCode] of [
  ['SYS/TEMP', 'ERR_POP3_AUTH_TEMP'],
  ['IN-USE', 'ERR_POP3_IN_USE'],
  ['LOGIN-DELAY', 'ERR_POP3_LOGIN_DELAY'],
  ['SYS/PERM', 'ERR_POP3_ERR_RESPONSE'],
] as const) {
  test(`-ERR [${code}] to AUTH is ${errCode} with the code as a field, and is not retried`, async (t) => {
    let attempts = 0;
    const { client } = await connect(t, (verb, _args, s) => {
      if (verb !== 'AUTH') return false;
      attempts++;
      s.write(`-ERR [${code}] later\r\n`);
      return true;
    });
    await assert.rejects(
      client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: async () => 'tok' }),
      (e) => e instanceof Pop3Error && e.code === errCode && e.responseCode === code,
    );
    assert.equal(attempts, 1);
  });
}

test('a mechanism the server does not offer is refused before anything is sent', async (t) => {
  const { client, server } = await connect(t, () => false, {
    allowPasswordLogin: true,
  });
  await assert.rejects(client.authenticate({ mechanism: 'PLAIN', user: 'u', token: 'p' }), (e) =>
    isPopgateError(e, 'ERR_SASL_MECHANISM'),
  );
  assert.ok(!server.received.some((l) => l.includes('AUTH')));
});

test('SASL PLAIN (a password) is refused unless allowPasswordLogin is set, before anything is sent', async (t) => {
  const { client, server } = await connect(t, () => false);
  await assert.rejects(
    client.authenticate({ mechanism: 'PLAIN', user: 'u', token: 'secret-password' }),
    (e) =>
      isPopgateError(e, 'ERR_POP3_INVALID_ARGUMENT') &&
      !String((e as Error).message).includes('secret-password'),
  );
  assert.ok(!server.received.some((l) => l.includes('AUTH')));
});

test('no token or password reaches a log line, a diagnostics event or an error', async (t) => {
  const logged: string[] = [];
  const sink = (level: string) => (fields: Record<string, unknown>, message?: string) =>
    logged.push(`${level} ${message ?? ''} ${JSON.stringify(fields)}`);
  const logger: Logger = {
    debug: sink('debug'),
    info: sink('info'),
    warn: sink('warn'),
    error: sink('error'),
  };
  const events: string[] = [];
  const onEvent = (message: unknown, name: string | symbol) =>
    events.push(`${String(name)} ${JSON.stringify(message)}`);
  for (const name of ['popgate:pop3:connect', 'popgate:pop3:command', 'popgate:pop3:response']) {
    diagnostics.subscribe(name, onEvent);
    t.after(() => diagnostics.unsubscribe(name, onEvent));
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const errors: unknown[] = [];
  // The server echoes what it got, the way a careless server might, in every failure.
  const echo = (verb: string, args: string[], s: FakeSession) => {
    if (verb === 'AUTH') {
      s.write(`-ERR [AUTH] bad credentials ${args.join(' ')} ${SECRET}\r\n`);
      return true;
    }
    if (verb === 'PASS') {
      s.write(`-ERR [AUTH] bad password ${args.join(' ')}\r\n`);
      return true;
    }
    return false;
  };
  for (const mechanism of ['XOAUTH2', 'OAUTHBEARER'] as const) {
    const { client } = await connect(t, echo, { logger });
    await client
      .authenticate({
        mechanism,
        user: 'u',
        token: async ({ forceRefresh }) => (forceRefresh ? `${SECRET}2` : SECRET),
      })
      .catch((e) => errors.push(e));
  }
  {
    const { client } = await connect(t, echo, { logger, allowPasswordLogin: true });
    await client.loginWithPassword({ user: 'u', password: SECRET }).catch((e) => errors.push(e));
  }
  {
    // A token that could break the framing is refused without being echoed.
    const { client } = await connect(t, () => false, { logger });
    await client
      .authenticate({ mechanism: 'XOAUTH2', user: 'u', token: `${SECRET}\r\nQUIT` })
      .catch((e) => errors.push(e));
  }
  assert.equal(errors.length, 4);
  assert.ok(logged.length > 0 && events.length > 0);
  const forbidden = [SECRET, b64(SECRET), 'SECRET-access'];
  const everything = [
    ...logged,
    ...events,
    ...errors.flatMap((e) => {
      const err = e as Error & Record<string, unknown>;
      return [
        err.message,
        String(err.stack),
        JSON.stringify(err),
        ...Object.values(err).map((v) => JSON.stringify(v) ?? ''),
      ];
    }),
  ];
  for (const line of everything) {
    for (const secret of forbidden)
      assert.ok(!line.includes(secret), `secret leaked in: ${line.slice(0, 300)}`);
  }
  assert.ok(everything.some((l) => l.includes('[REDACTED]')));
});
