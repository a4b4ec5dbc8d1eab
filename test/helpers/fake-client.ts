// A Pop3Client on a scripted fake server (test/helpers/fake-pop3-server.ts) over loopback
// plaintext, both closed when the test ends: the set-up every client unit test shares.
import type { TestContext } from 'node:test';
import { Pop3Client, type Pop3ClientOptions } from '../../src/client/index.ts';
import { type FakeScript, startFakePop3Server } from './fake-pop3-server.ts';

/** Server and client, not yet connected. */
export async function clientOnFakeServer(
  t: TestContext,
  script: FakeScript,
  options: Partial<Pop3ClientOptions> = {},
) {
  const server = await startFakePop3Server({ script });
  t.after(() => server.close());
  const client = new Pop3Client({
    host: server.host,
    port: server.port,
    tls: 'none-loopback-insecure',
    ...options,
  });
  t.after(() => client.close());
  return { server, client };
}

/** Server and client, connected and logged in with XOAUTH2 (user `u`, token `tok`). */
export async function loggedInOnFakeServer(
  t: TestContext,
  script: FakeScript,
  options: Partial<Pop3ClientOptions> = {},
) {
  const pair = await clientOnFakeServer(t, script, options);
  await pair.client.connect();
  await pair.client.authenticate({ mechanism: 'XOAUTH2', user: 'u', token: 'tok' });
  return pair;
}
