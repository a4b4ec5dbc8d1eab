// The docs cannot point at files that do not exist, nor tell a reader to type a flag that the
// command refuses: every relative Markdown link in README.md, docs/ and examples/ must resolve,
// and every `popgate <command> ... --flag` written as code in the docs must be a flag that command
// accepts (walked from the real commander program). The TOML examples of the pages that teach
// configuration are fed to the same validators `popgate fetch` and `popgate serve` use.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { resolveValidatorOptions } from '../../src/auth/options.ts';
import { flagsOf } from '../../src/cli/cli-doc.ts';
import { resolveServeSetup } from '../../src/cli/commands/serve.ts';
import { parseConfig } from '../../src/cli/config.ts';
import { docContext } from '../../src/cli/doc-context.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { resolveServerOptions } from '../../src/server/options.ts';
import type { MaildropStore } from '../../src/store/types.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function markdownUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...markdownUnder(path));
    else if (name.endsWith('.md')) out.push(path);
  }
  return out;
}

/** README.md, docs/**\/*.md and examples/**\/*.md, as absolute paths. */
function markdownFiles(): string[] {
  return [
    join(root, 'README.md'),
    ...markdownUnder(join(root, 'docs')),
    ...markdownUnder(join(root, 'examples')),
  ];
}

interface CodePiece {
  readonly text: string;
  readonly line: number;
}

interface SplitMarkdown {
  /** Prose lines with inline code blanked out (so `[a](b)` inside code is not a link). */
  readonly prose: Array<{ text: string; line: number }>;
  /** Inline code spans and the lines of fenced blocks (backslash continuations joined). */
  readonly code: CodePiece[];
  /** Fenced blocks with their info string, for the TOML checks. */
  readonly blocks: Array<{ lang: string; text: string; line: number }>;
}

export function splitMarkdown(text: string): SplitMarkdown {
  const prose: SplitMarkdown['prose'] = [];
  const code: CodePiece[] = [];
  const blocks: SplitMarkdown['blocks'] = [];
  const lines = text.split('\n');
  let fence: { marker: string; lang: string; start: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const opener = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (fence) {
      if (opener && opener[1]!.startsWith(fence.marker) && line.trim() === opener[1]) {
        blocks.push({ lang: fence.lang, text: fence.body.join('\n'), line: fence.start });
        // Shell-style continuations make one command of several lines.
        let pending = '';
        let pendingLine = fence.start;
        fence.body.forEach((rawLine, k) => {
          // Shell, TOML and ini `#` comments are prose, not commands.
          const bodyLine = rawLine.replace(/(^|\s)#.*$/, '$1');
          if (pending === '') pendingLine = fence!.start + k + 1;
          if (/\\\s*$/.test(bodyLine)) {
            pending += `${bodyLine.replace(/\\\s*$/, '')} `;
            return;
          }
          code.push({ text: pending + bodyLine, line: pendingLine });
          pending = '';
        });
        if (pending !== '') code.push({ text: pending, line: pendingLine });
        fence = undefined;
      } else {
        fence.body.push(line);
      }
      continue;
    }
    if (opener) {
      fence = { marker: opener[1]!, lang: opener[2] ?? '', start: i + 1, body: [] };
      continue;
    }
    const spans = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g;
    for (const match of line.matchAll(spans)) code.push({ text: match[2]!, line: i + 1 });
    prose.push({ text: line.replace(spans, (m) => ' '.repeat(m.length)), line: i + 1 });
  }
  return { prose, code, blocks };
}

/** Relative link targets of one Markdown file: inline links, images and reference definitions. */
function relativeLinks(split: SplitMarkdown): Array<{ target: string; line: number }> {
  const out: Array<{ target: string; line: number }> = [];
  for (const { text, line } of split.prose) {
    const found = [
      ...[...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
      ...[...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1]!),
    ];
    for (const target of found) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
      out.push({ target, line });
    }
  }
  return out;
}

/** GitHub's heading anchors of a Markdown file (lower case, punctuation dropped, spaces to -). */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*(`{3,}|~{3,})/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('every relative link in README.md, docs/ and examples/ points to an existing file and heading', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    const split = splitMarkdown(readFileSync(file, 'utf8'));
    for (const { target, line } of relativeLinks(split)) {
      checked++;
      const path = decodeURIComponent(target.replace(/[#?].*$/, ''));
      const resolved = path.startsWith('/') ? join(root, path) : resolve(dirname(file), path);
      if (!existsSync(resolved)) {
        broken.push(`${relative(root, file)}:${line}: ${target}`);
        continue;
      }
      const fragment = /#(.+)$/.exec(target)?.[1];
      if (fragment !== undefined && resolved.endsWith('.md') && !anchorsOf(resolved).has(fragment)) {
        broken.push(`${relative(root, file)}:${line}: ${target} (no such heading)`);
      }
    }
  }
  assert.ok(checked > 0, 'no links found: the Markdown scanner is broken');
  assert.deepEqual(broken, [], `links to files that do not exist:\n${broken.join('\n')}`);
});

/** Every command path (`token print`) with the long flags it accepts. */
function commandTable(): { root: Command; find: (words: string[]) => { command: Command; used: number } } {
  const program = buildProgram(docContext());
  return {
    root: program,
    find(words) {
      let command: Command = program;
      let used = 0;
      for (const word of words) {
        const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (!next) break;
        command = next;
        used++;
      }
      return { command, used };
    },
  };
}

/** `popgate WORDS... --flags` invocations written as code in `text`. */
export function invocations(text: string): Array<{ words: string[]; flags: string[] }> {
  const out: Array<{ words: string[]; flags: string[] }> = [];
  const starts = [...text.matchAll(/(?<![\w-])popgate(?:\.js)?[ \t]+(?=[a-z-])/g)];
  starts.forEach((start, k) => {
    const from = start.index! + start[0].length;
    const until = k + 1 < starts.length ? starts[k + 1]!.index! : text.length;
    let segment = text.slice(from, until);
    // A shell list, pipe, sub-shell end or comment ends the command.
    const stop = /&&|\|\||;|\s\|\s|\)|\s#\s/.exec(segment);
    if (stop) segment = segment.slice(0, stop.index);
    const leading: string[] = [];
    for (const word of segment.trim().split(/\s+/)) {
      if (!/^[a-z][a-z-]*$/.test(word)) break;
      leading.push(word);
    }
    const flags = [...segment.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
    out.push({ words: leading, flags });
  });
  return out;
}

/** What a Markdown text says about the CLI that the CLI does not accept. */
function cliProblems(text: string, where: string): { problems: string[]; flags: number } {
  const { root: program, find } = commandTable();
  const problems: string[] = [];
  let flagCount = 0;
  for (const piece of splitMarkdown(text).code) {
    for (const { words, flags } of invocations(piece.text)) {
      const at = `${where}:${piece.line}`;
      const { command, used } = find(words);
      if (used === 0) {
        if (words[0] !== undefined && words[0] !== 'help') {
          problems.push(`${at}: \`popgate ${words[0]}\` is not a popgate command`);
        }
        continue;
      }
      const accepted = new Set([...flagsOf(command), '--help']);
      if (command === program) accepted.add('--version');
      for (const flag of flags) {
        flagCount++;
        if (!accepted.has(flag)) {
          problems.push(`${at}: \`popgate ${words.slice(0, used).join(' ')}\` has no flag ${flag}`);
        }
      }
    }
  }
  return { problems, flags: flagCount };
}

test('every `popgate COMMAND --flag` in the docs is a flag that command accepts', () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    if (file === join(root, 'docs', 'cli.md')) continue; // generated from the program itself
    const found = cliProblems(readFileSync(file, 'utf8'), relative(root, file));
    problems.push(...found.problems);
    checked += found.flags;
  }
  assert.ok(checked > 0, 'no flags found: the invocation scanner is broken');
  assert.deepEqual(problems, [], `docs that do not match the CLI:\n${problems.join('\n')}`);
});

test('the CLI check catches an unknown flag, an unknown command and a flag of another command', () => {
  const text = [
    'Run `popgate fetch --watch --every 5m` or `popgate token print --account a --refresh`.',
    '```sh',
    'popgate fetch --bogus',
    'popgate frobnicate',
    'popgate token status --refresh   # --refresh belongs to token print',
    '```',
  ].join('\n');
  assert.deepEqual(cliProblems(text, 'x.md').problems, [
    'x.md:3: `popgate fetch` has no flag --bogus',
    'x.md:4: `popgate frobnicate` is not a popgate command',
    'x.md:5: `popgate token status` has no flag --refresh',
  ]);
});

test('the invocation scanner reads flags per command and stops at shell operators', () => {
  assert.deepEqual(
    invocations('popgate fetch --account a --to maildir:~/Mail && popgate token status --json'),
    [
      { words: ['fetch'], flags: ['--account', '--to'] },
      { words: ['token', 'status'], flags: ['--json'] },
    ],
  );
  assert.deepEqual(
    invocations('curl --cacert ca.crt --oauth2-bearer "$(popgate token print --account d)" -u x:'),
    [{ words: ['token', 'print'], flags: ['--account'] }],
  );
  assert.deepEqual(invocations('ExecStart=/usr/local/bin/popgate fetch --watch --every 5m'), [
    { words: ['fetch'], flags: ['--watch', '--every'] },
  ]);
  assert.deepEqual(invocations('node bin/popgate.js fetch --account x'), [
    { words: ['fetch'], flags: ['--account'] },
  ]);
  assert.deepEqual(invocations('popgate-uidlist popgate.lock'), []);
});

// ---- TOML examples: what the docs tell people to write must be what the code accepts ----

/** Pages and files whose configuration examples are complete and checked here. */
const ACCOUNT_EXAMPLES = [
  'docs/getting-started-microsoft365.md',
  'docs/getting-started-gmail.md',
  'docs/identity-providers.md',
];
const SERVER_EXAMPLES = ['docs/identity-providers.md'];

function tomlBlocks(relativePath: string): Array<{ text: string; where: string }> {
  const split = splitMarkdown(readFileSync(join(root, relativePath), 'utf8'));
  return split.blocks
    .filter((b) => b.lang === 'toml')
    .map((b) => ({ text: b.text, where: `${relativePath}:${b.line}` }));
}

const dummyStore = { open: async () => undefined } as unknown as MaildropStore;
const dummyValidator = { validate: async () => undefined } as never;

/**
 * Runs a `[server]` config through `popgate serve`'s own option pipeline: the config file reader,
 * the token validator options and the server options. Files under /etc/popgate/ are made in a
 * temporary folder (client secrets are read at start-up; certificates and keys only on listen).
 */
async function checkServerToml(text: string, where: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-docs-'));
  try {
    const local = text.replaceAll('/etc/popgate/', `${dir}/etc/`);
    await mkdir(join(dir, 'etc'), { recursive: true });
    for (const match of local.matchAll(/"([^"]+\.secret)"/g)) {
      await writeFile(match[1]!, 'docs-test-secret\n', { mode: 0o600 });
    }
    const file = join(dir, 'server.toml');
    await writeFile(file, local);
    const setup = await resolveServeSetup({ config: file });
    resolveValidatorOptions(setup.validatorOptions);
    resolveServerOptions({ ...setup.server, validator: dummyValidator, store: dummyStore });
  } catch (error) {
    assert.fail(`${where}: ${(error as Error).message}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the account examples of the getting-started pages and examples/config.toml are valid configs', () => {
  const blocks = ACCOUNT_EXAMPLES.flatMap(tomlBlocks);
  const example = join(root, 'examples', 'config.toml');
  blocks.push({ text: readFileSync(example, 'utf8'), where: 'examples/config.toml' });
  let accounts = 0;
  for (const { text, where } of blocks) {
    if (!/^\[accounts\./m.test(text)) continue;
    const config = parseConfig(text, where);
    accounts += config.accounts.size;
  }
  assert.ok(accounts >= 4, `expected at least 4 accounts in the examples, found ${accounts}`);
});

test('the [server] examples of identity-providers.md and examples/server.toml start popgate serve', async () => {
  const blocks = SERVER_EXAMPLES.flatMap(tomlBlocks).filter((b) => /^\[server\]/m.test(b.text));
  blocks.push({
    text: readFileSync(join(root, 'examples', 'server.toml'), 'utf8'),
    where: 'examples/server.toml',
  });
  assert.ok(blocks.length >= 4, `expected a [server] example per identity provider, found ${blocks.length}`);
  for (const { text, where } of blocks) await checkServerToml(text, where);
});
