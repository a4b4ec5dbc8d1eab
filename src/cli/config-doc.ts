import type { Command } from 'commander';
import { envNameFor, flagNameFor } from './config.ts';
import {
  ACCOUNT_SETTINGS,
  PROXY_SETTINGS,
  SERVER_ISSUER_SETTINGS,
  type ServerIssuerSettingSpec,
  type SettingSpec,
} from './config-schema.ts';

const GROUP_TITLES: Record<SettingSpec['group'], string> = {
  identity: 'Account',
  oauth: 'OAuth (token manager)',
  connection: 'POP3 connection',
  fetch: 'Fetching',
};

function typeLabel(spec: Pick<SettingSpec, 'values'> & { type: string }): string {
  if (spec.type === 'enum') return (spec.values ?? []).map((v) => `\`${v}\``).join(' \\| ');
  return spec.type;
}

/** The commands (e.g. `login`, `token print`) that accept `flag`. */
function commandsAccepting(program: Command, flag: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const command of program.commands) {
    const name = `${prefix}${command.name()}`;
    if (command.options.some((option) => option.long === flag)) out.push(name);
    out.push(...commandsAccepting(command, flag, `${name} `));
  }
  return out;
}

function flagCell(program: Command, spec: SettingSpec): string {
  const flag = flagNameFor(spec);
  const commands = commandsAccepting(program, flag);
  return commands.length === 0 ? '—' : `\`${flag}\` (${commands.join(', ')})`;
}

/**
 * The configuration reference as Markdown, generated from ACCOUNT_SETTINGS and, for the flag
 * column, from the commands that really accept each flag.
 */
export function renderConfigDoc(program: Command): string {
  let out = `# Configuration reference

<!-- Generated from src/cli/config-schema.ts by \`npm run docs:config\`; do not edit by hand. -->

popgate reads one TOML file per user: \`$XDG_CONFIG_HOME/popgate/config.toml\` (usually
\`~/.config/popgate/config.toml\`; \`POPGATE_CONFIG\` names another). Each account is a table
\`[accounts.NAME]\`. Every setting can also come from an environment variable and a flag;
precedence is **file, then environment, then flags**. Unknown keys are errors that name the key.
Secrets are never written inline: give a file (mode 0600) or a command instead. Tokens live
encrypted under \`$XDG_DATA_HOME/popgate\`; fetch state and locks under \`$XDG_STATE_HOME/popgate\`.

\`\`\`toml
[accounts.work]
provider = "microsoft"
user = "me@example.com"
client_id = "00000000-0000-0000-0000-000000000000"
to = "maildir:~/Mail/work"
\`\`\`

The \`[server]\` table configures \`popgate serve\`; see [server.md](server.md). The \`[proxy]\`
table configures \`popgate proxy\` (below); see [proxy.md](proxy.md).
`;
  for (const group of Object.keys(GROUP_TITLES) as SettingSpec['group'][]) {
    out += `\n## ${GROUP_TITLES[group]}\n\n| key | type | env var | flag | default | meaning |\n|---|---|---|---|---|---|\n`;
    for (const spec of ACCOUNT_SETTINGS.filter((s) => s.group === group)) {
      const def = spec.defaultValue === undefined ? '' : `\`${String(spec.defaultValue)}\``;
      out += `| \`${spec.key}\` | ${typeLabel(spec)} | \`${envNameFor(spec)}\` | ${flagCell(program, spec)} | ${def} | ${spec.description} |\n`;
    }
  }
  out += `\n## Proxy (\`[proxy]\` table)\n\nRead by \`popgate proxy\`; see [proxy.md](proxy.md).\n\n| key | type | default | meaning |\n|---|---|---|---|\n`;
  for (const spec of PROXY_SETTINGS) {
    const def =
      spec.defaultValue === undefined
        ? ''
        : `\`${Array.isArray(spec.defaultValue) ? JSON.stringify(spec.defaultValue) : String(spec.defaultValue)}\``;
    const type = spec.type === 'enum' ? (spec.values ?? []).map((v) => `\`${v}\``).join(' \\| ') : spec.type;
    out += `| \`${spec.key}\` | ${type} | ${def} | ${spec.description} |\n`;
  }
  out += `\n## Server issuers (\`[[server.issuers]]\`)\n\nEach \`[[server.issuers]]\` table of \`popgate serve\` is one trusted issuer (see [server-auth.md](server-auth.md)). The flag column is the single-issuer flags form.\n\n| key | type | flag | default | meaning |\n|---|---|---|---|---|\n`;
  for (const spec of SERVER_ISSUER_SETTINGS) {
    out += `| \`${spec.key}\` | ${typeLabel(spec)} | ${serverFlagCell(program, spec)} | ${spec.defaultValue === undefined ? '' : `\`${String(spec.defaultValue)}\``} | ${spec.description} |\n`;
  }
  return out;
}

function serverFlagCell(program: Command, spec: ServerIssuerSettingSpec): string {
  if (spec.flag === undefined) return '—';
  if (!commandsAccepting(program, spec.flag).includes('serve')) {
    throw new Error(`config-schema: popgate serve has no ${spec.flag} flag for ${spec.key}`);
  }
  return `\`${spec.flag}\``;
}
