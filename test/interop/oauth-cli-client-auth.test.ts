// Confidential clients in the CLI: `popgate login --flow client-credentials` with `client_auth`
// client_secret_basic, client_secret_post and private_key_jwt (a PEM `private_key_file`) against
// the real oidc-provider, whose clients each allow one method only — so a login that works proves
// the method the config asked for was used. Loose key files, a missing key and a wrong secret
// fail before or at the provider with configuration errors, and no secret reaches the output.
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recordTestSecret } from '../../dev/secret-ledger.ts';
import { main } from '../../src/cli/main.ts';
import { capturedCliContext } from '../helpers/cli-context.ts';
import {
  type AuthorizationServer,
  clientCredentialsAccountToml,
  startTestAuthorizationServer,
  tempDir,
} from '../helpers/oidc.ts';

let as: AuthorizationServer;
let home: Awaited<ReturnType<typeof tempDir>>;
const secrets: string[] = [];
const outputs: string[] = [];
const tokenRequests: string[] = [];

interface TokenRequestContext {
  get(field: string): string;
  oidc?: { body?: Record<string, unknown> };
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: home.dir,
    XDG_CONFIG_HOME: join(home.dir, 'config'),
    XDG_DATA_HOME: join(home.dir, 'data'),
    XDG_STATE_HOME: join(home.dir, 'state'),
    PATH: process.env.PATH ?? '',
  };
  // Both streams go to the run's secret scan as written, except the stdout of `token print`.
  const ctx = capturedCliContext(env, { log: 'oauth-cli-client-auth', args });
  const code = await main(args, ctx);
  const { stdout, stderr } = ctx;
  outputs.push(stderr.text, ...(args.includes('print') ? [] : [stdout.text]));
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Registers a client in the provider's own storage (how oidc-provider keeps dynamic clients). */
async function registerClient(metadata: Record<string, unknown>): Promise<void> {
  const provider = as.provider as unknown as {
    Client: { adapter: { upsert(id: string, payload: Record<string, unknown>): Promise<void> } };
  };
  await provider.Client.adapter.upsert(String(metadata.client_id), {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'pop3',
    ...metadata,
  });
}

async function file(name: string, text: string, mode: number): Promise<string> {
  const path = join(home.dir, name);
  await writeFile(path, text, { mode });
  return path;
}

/** The claims of a JWT access token (not verified: the provider is the one that issued it). */
function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

const ecKeyPem = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    jwk: publicKey.export({ format: 'jwk' }),
  };
};

before(async () => {
  as = await startTestAuthorizationServer({ accessTokenTtl: 300 });
  home = await tempDir('popgate-client-auth-');
  await mkdir(join(home.dir, 'config', 'popgate'), { recursive: true });

  // How each successful token request authenticated, seen by the provider itself.
  as.provider.on('grant.success', (ctx) => {
    const koa = ctx as TokenRequestContext;
    const body = koa.oidc?.body ?? {};
    if (koa.get('authorization').startsWith('Basic ')) tokenRequests.push('basic');
    else if (typeof body.client_secret === 'string') tokenRequests.push('post');
    else if (body.client_assertion_type === JWT_BEARER) tokenRequests.push('jwt');
    else tokenRequests.push('other');
  });
  const postSecret = randomBytes(24).toString('base64url');
  secrets.push(postSecret, as.clients.secretBasic.clientSecret);
  recordTestSecret(postSecret);
  await registerClient({
    client_id: 'popgate-app-post',
    client_secret: postSecret,
    token_endpoint_auth_method: 'client_secret_post',
  });
  const jwtKey = ecKeyPem();
  const kid = randomUUID();
  secrets.push(jwtKey.pem.split('\n').slice(1, 3).join(''));
  // The private key: its first PEM line (ends in the first bytes of the scalar; the later lines
  // hold the public point, which may be printed) and the scalar itself as a JWK would carry it.
  recordTestSecret(jwtKey.pem.split('\n')[1]);
  recordTestSecret(createPrivateKey(jwtKey.pem).export({ format: 'jwk' }).d);
  await registerClient({
    client_id: 'popgate-app-pem',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [{ ...jwtKey.jwk, kid, alg: 'ES256', use: 'sig' }] },
  });

  const basicFile = await file('basic.secret', `${as.clients.secretBasic.clientSecret}\n`, 0o600);
  const postFile = await file('post.secret', `${postSecret}\n`, 0o600);
  const wrongFile = await file('wrong.secret', 'not-the-secret\n', 0o600);
  const pemFile = await file('client-key.pem', jwtKey.pem, 0o600);
  const loosePem = await file('loose-key.pem', jwtKey.pem, 0o644);
  const otherPem = await file('other-key.pem', ecKeyPem().pem, 0o600);
  const account = (name: string, clientId: string, lines: string[]) =>
    clientCredentialsAccountToml(as, name, clientId, lines);
  await writeFile(
    join(home.dir, 'config', 'popgate', 'config.toml'),
    [
      account('basic', as.clients.secretBasic.clientId, [
        'client_auth = "client_secret_basic"',
        `client_secret_file = "${basicFile}"`,
      ]),
      account('post', 'popgate-app-post', [
        'client_auth = "client_secret_post"',
        `client_secret_file = "${postFile}"`,
      ]),
      account('post-as-basic', 'popgate-app-post', [`client_secret_file = "${postFile}"`]),
      account('pem', 'popgate-app-pem', [`private_key_file = "${pemFile}"`, `private_key_kid = "${kid}"`]),
      account('pem-loose', 'popgate-app-pem', [
        'client_auth = "private_key_jwt"',
        `private_key_file = "${loosePem}"`,
      ]),
      account('pem-other', 'popgate-app-pem', [
        'client_auth = "private_key_jwt"',
        `private_key_file = "${otherPem}"`,
      ]),
      account('pem-missing', 'popgate-app-pem', ['client_auth = "private_key_jwt"']),
      account('wrong', as.clients.secretBasic.clientId, [`client_secret_file = "${wrongFile}"`]),
    ].join('\n'),
  );
});

after(async () => {
  await as.stop();
  // The secret and key files are this test's fixtures, in plain text by design.
  await home.cleanup({
    except: ['basic.secret', 'post.secret', 'client-key.pem', 'loose-key.pem', 'other-key.pem'],
  });
});

/** Logs in, checks how the one token request authenticated, and reads the token back. */
async function loginAndPrint(name: string, clientId: string, auth: 'basic' | 'post' | 'jwt'): Promise<void> {
  const before = as.grantCounts().client_credentials ?? 0;
  tokenRequests.length = 0;
  const login = await run(['login', '--account', name, '--flow', 'client-credentials']);
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stderr, new RegExp(`Logged in account ${name}`));
  assert.equal((as.grantCounts().client_credentials ?? 0) - before, 1);
  assert.deepEqual(tokenRequests, [auth]);
  const print = await run(['token', 'print', '--account', name]);
  assert.equal(print.code, 0, print.stderr);
  const token = print.stdout.trim();
  assert.equal(claims(token).client_id, clientId);
  assert.equal(claims(token).scope, 'pop3');
}

describe('popgate login --flow client-credentials with client authentication from the config', () => {
  test('client_secret_basic sends the secret in the Authorization header', async () => {
    await loginAndPrint('basic', as.clients.secretBasic.clientId, 'basic');
  });

  test('client_secret_post sends it in the form body, not in a header', async () => {
    await loginAndPrint('post', 'popgate-app-post', 'post');
  });

  test('private_key_jwt signs an assertion with the PEM private_key_file (method inferred from the key file)', async () => {
    await loginAndPrint('pem', 'popgate-app-pem', 'jwt');
  });

  test('without client_auth, a client secret file means client_secret_basic', async () => {
    await loginAndPrint('post-as-basic', 'popgate-app-post', 'basic');
  });

  test('a private key file others can read is refused before any request', async () => {
    const before = as.grantCounts().client_credentials ?? 0;
    const result = await run(['login', '--account', 'pem-loose']);
    assert.equal(result.code, 78);
    assert.match(
      result.stderr,
      /private_key_file .*loose-key\.pem must be a regular file with mode 0600 \(run chmod 600/,
    );
    assert.equal(as.grantCounts().client_credentials ?? 0, before);
  });

  test('a key the provider does not know is invalid_client; a missing key file is named', async () => {
    const other = await run(['login', '--account', 'pem-other']);
    assert.equal(other.code, 78);
    assert.match(other.stderr, /ERR_OAUTH_INVALID_CLIENT/);
    const missing = await run(['login', '--account', 'pem-missing']);
    assert.equal(missing.code, 78);
    assert.match(missing.stderr, /client_auth = "private_key_jwt" needs "private_key_file"/);
  });

  test('a wrong client secret is a configuration error (exit 78)', async () => {
    const result = await run(['login', '--account', 'wrong']);
    assert.equal(result.code, 78);
    assert.match(result.stderr, /ERR_OAUTH_INVALID_CLIENT/);
  });

  test('no client secret or private key appears in any output', () => {
    assert.ok(outputs.length > 0);
    for (const text of outputs) {
      for (const secret of secrets) assert.ok(!text.includes(secret), 'a client secret or key leaked');
      assert.doesNotMatch(text, /PRIVATE KEY|not-the-secret/);
    }
  });
});
