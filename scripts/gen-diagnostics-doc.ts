// Writes docs/diagnostics.md from the one list of channels (src/diagnostics.ts). `npm run
// docs:diagnostics`; test/unit/diagnostics-doc.test.ts checks the committed file is current.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DIAGNOSTICS_CHANNELS } from '../src/diagnostics.ts';

/** The text of docs/diagnostics.md. */
export function renderDiagnosticsDoc(): string {
  const rows = Object.values(DIAGNOSTICS_CHANNELS).map(
    (c) => `| \`${c.name}\` | ${c.publisher} | ${c.payload} | ${c.description} |`,
  );
  return `# Diagnostics channels

<!-- Generated from src/diagnostics.ts by \`npm run docs:diagnostics\`; do not edit by hand. -->

popgate's library code prints nothing. It publishes events on Node's
[\`node:diagnostics_channel\`](https://nodejs.org/api/diagnostics_channel.html) (the pattern undici
uses), and whoever embeds it subscribes: the \`popgate\` command wires them to pino and
Prometheus, a test harness records them, an application can forward them anywhere. Publishing
costs nothing while no one subscribes.

\`\`\`ts
import diagnostics from 'node:diagnostics_channel';
diagnostics.subscribe('popgate:pop3:response', (event) => console.log(event));
\`\`\`

No payload ever holds an access token, refresh token, password, client secret or key: command
lines and SASL exchanges are redacted where the event is built, and the event types admit only
identities, reasons, counts and timings.

| channel | published by | payload | when |
|---|---|---|---|
${rows.join('\n')}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeFileSync(new URL('../docs/diagnostics.md', import.meta.url), renderDiagnosticsDoc());
}
