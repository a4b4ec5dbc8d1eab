/**
 * Fetch one message over POP3 with an OAuth2 access token and save it to a file.
 *
 *   popgate login --account work                      # once, see docs/getting-started-*.md
 *   npx tsx examples/fetch-one.ts work me@example.com outlook.office365.com message.eml
 *
 * Arguments: ACCOUNT USER HOST OUT_FILE [PORT [CA_FILE]]. The access token comes from
 * `popgate token print --account ACCOUNT` (popgate's token manager: stored encrypted, renewed
 * ahead of expiry, rotated refresh tokens kept), so this program never handles a refresh token.
 * The message is not deleted on the server. Inside this repository, run it with
 * `npx tsx --tsconfig examples/tsconfig.json ...` so `popgate/*` resolves to src/.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Pop3Client, type TokenProvider } from 'popgate/client';
import { isPopgateError } from 'popgate/errors';

const run = promisify(execFile);
const [account, user, host, outFile, port = '995', caFile] = process.argv.slice(2);
if (!account || !user || !host || !outFile) {
  console.error('usage: fetch-one.ts ACCOUNT USER HOST OUT_FILE [PORT [CA_FILE]]');
  process.exit(64);
}

// Called again with forceRefresh: true if the server answers [AUTH]: one refresh, one retry.
const token: TokenProvider = async ({ forceRefresh }) => {
  const args = ['token', 'print', '--account', account, ...(forceRefresh ? ['--refresh'] : [])];
  const { stdout } = await run(process.env.POPGATE_BIN ?? 'popgate', args);
  return stdout.trim();
};

const client = new Pop3Client({
  host,
  port: Number(port),
  tls: 'implicit', // pop3s; certificates are always verified
  ...(caFile ? { ca: await readFile(caFile) } : {}),
});
try {
  const capabilities = await client.connect();
  const mechanism = capabilities.sasl.includes('OAUTHBEARER') ? 'OAUTHBEARER' : 'XOAUTH2';
  await client.authenticate({ mechanism, user, token });
  const [first] = await client.uidl();
  if (first === undefined) {
    console.error('the maildrop is empty');
  } else {
    await pipeline(await client.retrieve(first.number), createWriteStream(outFile, { mode: 0o600 }));
    console.error(`saved message ${first.number} (UIDL ${first.uid}) to ${outFile}`);
  }
  await client.quit();
} catch (error) {
  client.close();
  if (!isPopgateError(error)) throw error;
  console.error(`fetch-one: ${error.message} (${error.code})`);
  process.exitCode = 1;
}
