// A Maildir that another program changes while popgate lists it (Dovecot or an MUA renaming
// cur/X:2, to cur/X:2,S to set a flag, or moving new/ to cur/): every listing still holds every
// message. A rename inside a directory being read can hide the file from that readdir, which is
// how a server test once saw 1,999 of 2,000 messages (issue 16).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listMaildir } from '../../src/store/maildir-scan.ts';

const COUNT = 4000;

test('a listing taken while another process renames files in cur/ holds every message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-listing-race-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub));
  const names: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    // Long names, as real Maildir names are: the directory needs several getdents calls.
    const base = `1733300000.M${String(i).padStart(6, '0')}P4242Q${i}.mail-host.example.test,S=1234,W=1260`;
    names.push(base);
    await writeFile(join(dir, 'cur', `${base}:2,`), 'x');
  }
  // The other program: flips the Seen flag of every file, over and over, until told to stop.
  const renamer = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs'); const dir = process.argv[1]; const names = JSON.parse(fs.readFileSync(0, 'utf8'));
       let seen = false; process.stdout.write('ready\\n');
       for (;;) { for (const n of names) { const a = dir + '/' + n + (seen ? ':2,S' : ':2,'); const b = dir + '/' + n + (seen ? ':2,' : ':2,S'); fs.renameSync(a, b); } seen = !seen; }`,
      join(dir, 'cur'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.after(() => renamer.kill('SIGKILL'));
  renamer.stdin.end(JSON.stringify(names));
  await new Promise<void>((resolve) => renamer.stdout.once('data', () => resolve()));
  const short: number[] = [];
  for (let run = 0; run < 30; run++) {
    const listing = await listMaildir(dir);
    if (listing.size !== COUNT) short.push(listing.size);
  }
  renamer.kill('SIGKILL');
  assert.deepEqual(short, [], `listings that missed messages (sizes): ${short.join(', ')}`);
});
