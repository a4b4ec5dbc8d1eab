// `popgate login --account NAME [--provider P] [--flow device|browser|client-credentials]`:
// obtains tokens with the account's flow and stores them encrypted. Prompts go to stderr; no
// token is ever printed.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { type OAuthAccount, resolveAccount } from '../../oauth/account.ts';
import { browserFlow } from '../../oauth/flows/browser.ts';
import { clientCredentialsFlow } from '../../oauth/flows/client-credentials.ts';
import { deviceFlow } from '../../oauth/flows/device.ts';
import { openInBrowser } from '../../oauth/open-browser.ts';
import type { TokenSet } from '../../oauth/token-set.ts';
import type { RegisterCommand } from '../command.ts';
import { accountFromCli } from '../config.ts';
import type { CliContext } from '../context.ts';
import { PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP } from '../token-key.ts';
import { accountOptionsFor, openTokens, tokenDir } from '../tokens.ts';

interface LoginFlags {
  account?: string;
  provider?: string;
  flow?: string;
  issuer?: string;
  clientId?: string;
  scopes?: string;
  user?: string;
  allowInsecureHttp?: boolean;
  ca?: string;
  browser?: boolean;
  passphrasePrompt?: boolean;
}

/** The lines the user pastes (headless browser flow), when stdin is a terminal. */
function pastedLines(ctx: CliContext): { lines: AsyncIterable<string>; close: () => void } | undefined {
  if (!ctx.stdin.isTTY) return undefined;
  const rl = createInterface({ input: ctx.stdin, terminal: false });
  return { lines: rl, close: () => rl.close() };
}

const minutes = (seconds: number): string =>
  seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${seconds} s`;

async function obtain(account: OAuthAccount, ctx: CliContext, flags: LoginFlags): Promise<TokenSet> {
  switch (account.flow) {
    case 'device':
      return deviceFlow(account, {
        onPrompt: (prompt) => {
          ctx.stderr.write(
            `To log in account ${account.name}, open ${prompt.verificationUri} and enter the code: ${prompt.userCode}\n` +
              (prompt.verificationUriComplete ? `(or open ${prompt.verificationUriComplete})\n` : '') +
              `The code expires in ${Math.round(prompt.expiresIn / 60)} min. Waiting for approval...\n`,
          );
        },
      });
    case 'browser': {
      const paste = pastedLines(ctx);
      try {
        return await browserFlow(account, {
          ...(paste
            ? {
                pastedRedirects: paste.lines,
                onPasteRefused: (problem, triesLeft) => {
                  ctx.stderr.write(
                    `That did not work: ${problem}. Paste it again (${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left).\n`,
                  );
                },
              }
            : {}),
          onAuthorizationUrl: (url, { expiresIn }) => {
            const opened = flags.browser !== false && openInBrowser(url, ctx.env);
            ctx.stderr.write(
              `${opened ? 'Opened your browser. If it did not appear, open' : 'Open'} this URL to log in account ${account.name}:\n${url}\n` +
                (paste
                  ? 'On another machine? Paste the address the browser ends up on (http://127.0.0.1:.../callback?...) here.\n'
                  : '') +
                `The login stays open for ${minutes(expiresIn)}. Waiting for the browser...\n`,
            );
          },
        });
      } finally {
        paste?.close();
      }
    }
    case 'client-credentials':
      return clientCredentialsFlow(account);
  }
}

async function login(ctx: CliContext, flags: LoginFlags): Promise<void> {
  const overrides: Record<string, unknown> = {};
  for (const key of [
    'provider',
    'flow',
    'issuer',
    'clientId',
    'scopes',
    'user',
    'allowInsecureHttp',
    'ca',
  ] as const) {
    if (flags[key] !== undefined) overrides[key] = flags[key];
  }
  const config = await accountFromCli(ctx, flags.account, overrides);
  const account = await resolveAccount(await accountOptionsFor(config, ctx));
  // The key first (a passphrase prompt, a keyring that cannot be used), then the provider: a
  // login is never thrown away because its tokens cannot be stored.
  const { manager, keys } = await openTokens(ctx, config, flags);
  await keys.source.getKey();
  const tokens = await obtain(account, ctx, flags);
  await manager.saveLogin(account, tokens, account.flow);
  await keys.remember();
  const expiry =
    tokens.expiresAt === undefined
      ? 'no expiry given'
      : `access token valid until ${new Date(tokens.expiresAt).toISOString()}`;
  const info = manager.store.info();
  ctx.stderr.write(
    `Logged in account ${account.name} (${expiry}; scopes: ${tokens.scopes.join(' ') || 'as requested'}; refresh token: ${tokens.refreshToken ? 'yes' : 'no'}).\n` +
      `Tokens are encrypted in ${tokenDir(ctx)} (key: ${info.keySource ?? 'unknown'}, ${keys.source.description}).\n`,
  );
}

export const registerLogin: RegisterCommand = (program: Command, ctx: CliContext) => {
  program
    .command('login')
    .description(
      'Obtain OAuth tokens for an account (device code, browser with PKCE, or client credentials) and store them encrypted',
    )
    .option(
      '--account <name>',
      'the account (a [accounts.NAME] section of the config file, or ad hoc with the flags below; default: the only one configured)',
    )
    .option('--provider <provider>', 'microsoft, google, fastmail, zoho or custom')
    .option('--flow <flow>', 'device, browser or client-credentials')
    .option('--issuer <url>', 'issuer URL for discovery (custom providers)')
    .option('--client-id <id>', 'OAuth client id of your app registration')
    .option('--scopes <scopes>', 'scopes to request, space or comma separated')
    .option('--user <user>', 'mailbox login name')
    .option('--allow-insecure-http', 'allow http:// endpoints on loopback (tests and local development)')
    .option('--ca <file>', 'extra CA certificate (PEM) for the authorization server')
    .option('--no-browser', 'do not try to open a browser (print the URL; paste the redirect back)')
    .option(PASSPHRASE_PROMPT_FLAG, PASSPHRASE_PROMPT_HELP)
    .action(async (flags: LoginFlags) => {
      await login(ctx, flags);
    });
};
