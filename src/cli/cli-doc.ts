import type { Command } from 'commander';
import { EXIT } from './exit-codes.ts';

function allCommands(root: Command, prefix: string[] = []): Array<{ path: string[]; command: Command }> {
  const out: Array<{ path: string[]; command: Command }> = [];
  for (const command of root.commands) {
    const path = [...prefix, command.name()];
    out.push({ path, command });
    out.push(...allCommands(command, path));
  }
  return out;
}

/** Every `--flag` a command accepts, for the docs test. */
export function flagsOf(command: Command): string[] {
  return command.options.map((option) => option.long ?? option.short ?? '').filter(Boolean);
}

/** The CLI reference as Markdown: each command's own --help text, generated from the program. */
export function renderCliDoc(program: Command): string {
  let out = `# \`popgate\` command reference

<!-- Generated from the commander program by \`npm run docs:cli\`; do not edit by hand. -->

Every setting of an account can also be given in the config file and as an environment
variable: see [configuration.md](configuration.md).

## Exit codes

| code | meaning |
|---|---|
| ${EXIT.OK} | success |
| ${EXIT.FAILURE} | unexpected failure (a bug: please report it) |
| ${EXIT.USAGE} | wrong usage: unknown command or flag |
| ${EXIT.DATA} | data error: corrupt state, a server that breaks the protocol, a size mismatch |
| ${EXIT.TEMPFAIL} | temporary failure: network, \`[SYS/TEMP]\`, \`[IN-USE]\`, provider outage; try again later |
| ${EXIT.NOPERM} | a new login is needed (\`popgate login --account NAME\`), or the server refused the credentials |
| ${EXIT.CONFIG} | configuration error: fix the config file, flags or file modes |

## popgate

\`\`\`text
${program.helpInformation().trimEnd()}
\`\`\`
`;
  for (const { path, command } of allCommands(program)) {
    out += `\n## popgate ${path.join(' ')}\n\n\`\`\`text\n${command.helpInformation().trimEnd()}\n\`\`\`\n`;
  }
  return out;
}
