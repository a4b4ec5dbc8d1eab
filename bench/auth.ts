// Token validation cost per login, measured against the project's real authorization server
// (oidc-provider on 127.0.0.1): JWT access tokens with the keys cached, opaque tokens with the
// introspection answer cached, and uncached introspection (one HTTP round trip to oidc-provider
// per login). Prints medians over several rounds.
//
// Run: node --import tsx bench/auth.ts [--rounds 7] [--quick]

import { createLocalJWKSet, jwtVerify } from 'jose';
import { type AuthorizationServer, startAuthorizationServer } from '../dev/authorization-server/index.ts';
import { devValidatorIssuer } from '../dev/validator-issuer.ts';
import { createTokenValidator, type PopgateTokenValidator } from '../src/auth/index.ts';

const USER = 'alice@example.test';
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const roundsArg = args.indexOf('--rounds');
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 3 : 7;
const CONCURRENCY = 32;

async function deviceToken(as: AuthorizationServer, resource: string): Promise<string> {
  const metadata = (await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    string
  >;
  const form = (fields: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const client = as.clients.native.clientId;
  const device = (await (
    await fetch(
      metadata.device_authorization_endpoint!,
      form({ client_id: client, scope: 'openid pop3', resource }),
    )
  ).json()) as { device_code: string; user_code: string };
  await as.approveDevice(device.user_code, USER);
  const response = await fetch(
    metadata.token_endpoint!,
    form({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: device.device_code,
      client_id: client,
      resource,
    }),
  );
  if (response.status !== 200) throw new Error(`token request failed: HTTP ${response.status}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Result {
  name: string;
  usPerLogin: number;
  sequentialPerSecond: number;
  concurrentPerSecond: number;
}

/** Sequential logins give the latency of one; `CONCURRENCY` parallel logins give throughput. */
async function measure(name: string, iterations: number, login: () => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < Math.min(50, iterations); i++) await login(); // warm-up (keys, metadata, JIT)
  const latencies: number[] = [];
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let start = performance.now();
    for (let i = 0; i < iterations; i++) await login();
    latencies.push(((performance.now() - start) * 1000) / iterations);
    start = performance.now();
    let remaining = iterations;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (remaining > 0) {
          remaining--;
          await login();
        }
      }),
    );
    rates.push(iterations / ((performance.now() - start) / 1000));
  }
  const usPerLogin = median(latencies);
  return { name, usPerLogin, sequentialPerSecond: 1e6 / usPerLogin, concurrentPerSecond: median(rates) };
}

function validator(as: AuthorizationServer, extra: Record<string, unknown> = {}): PopgateTokenValidator {
  return createTokenValidator({
    issuers: [devValidatorIssuer(as)],
    allowInsecureLoopback: true,
    ...extra,
  });
}

async function main(): Promise<void> {
  const as = await startAuthorizationServer({ accessTokenTtl: 3600 });
  try {
    const jwt = await deviceToken(as, as.pop3Audience);
    const opaque = await deviceToken(as, as.opaqueAudience);
    const cached = validator(as);
    const uncached = validator(as, { introspectionCache: { maxEntries: 0 } });
    const context = { user: USER };
    const n = quick ? 200 : 2000;
    // Baseline: jose's signature and claim check alone with a local key set (no popgate policy).
    const keys = createLocalJWKSet(
      (await (await fetch(as.jwksUri)).json()) as Parameters<typeof createLocalJWKSet>[0],
    );
    const results = [
      await measure('baseline: jose jwtVerify, local keys', n, () =>
        jwtVerify(jwt, keys, { issuer: as.issuer, audience: as.pop3Audience }),
      ),
      await measure('JWT RS256 at+jwt, keys cached', n, () => cached.validate(jwt, context)),
      await measure('opaque, introspection cached', n * 5, () => cached.validate(opaque, context)),
      await measure('opaque, introspection uncached (oidc-provider)', quick ? 50 : 300, () =>
        uncached.validate(opaque, context),
      ),
    ];
    console.log(`\nToken validation per login (node ${process.version}, median of ${ROUNDS} rounds)`);
    console.log(
      `${'case'.padEnd(48)} ${'µs/login'.padStart(10)} ${'logins/s seq'.padStart(14)} ${`logins/s x${CONCURRENCY}`.padStart(14)}`,
    );
    for (const r of results) {
      console.log(
        `${r.name.padEnd(48)} ${r.usPerLogin.toFixed(1).padStart(10)} ${Math.round(r.sequentialPerSecond).toString().padStart(14)} ${Math.round(r.concurrentPerSecond).toString().padStart(14)}`,
      );
    }
  } finally {
    await as.stop();
  }
}

await main();
