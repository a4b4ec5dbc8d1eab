// Writes docs/configuration.md from the one schema (src/cli/config-schema.ts), so the keys, env
// vars and flags in the docs cannot drift from the code. `npm run docs:config`; a test checks the
// committed file is current.
import { writeFileSync } from 'node:fs';
import { renderConfigDoc } from '../src/cli/config-doc.ts';
import { docContext } from '../src/cli/doc-context.ts';
import { buildProgram } from '../src/cli/main.ts';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigDoc(buildProgram(docContext())));
