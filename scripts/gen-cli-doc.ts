// Writes docs/cli.md from the commander program itself (`npm run docs:cli`); a test checks that
// the committed file is current, so --help and the docs cannot drift.
import { writeFileSync } from 'node:fs';
import { renderCliDoc } from '../src/cli/cli-doc.ts';
import { buildProgram } from '../src/cli/main.ts';
import { docContext } from '../src/cli/doc-context.ts';

writeFileSync(new URL('../docs/cli.md', import.meta.url), renderCliDoc(buildProgram(docContext())));
