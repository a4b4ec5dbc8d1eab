// The guarantee, proven with the real CLI as a child process against a real Dovecot: SIGKILL at
// 50 random moments during a 500-message fetch with --delete. After the reruns every message is
// in the Maildir exactly once, byte for byte, and none is left on the server.
// (Connection cuts and a full disk: fetch-crash-net.test.ts.)
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import {
  assertExactlyOnce,
  onServer,
  prepare,
  prng,
  runToEnd,
  sourceContents,
  startCli,
} from '../helpers/fetch-crash.ts';
import { writeMixedMessages, writeUniformMessages } from '../helpers/mail-fixtures.ts';
import { requirePeer } from '../helpers/peers.ts';

let shared: Promise<DovecotInstance> | undefined;
function dovecot(): Promise<DovecotInstance> {
  shared ??= startDovecot({ users: ['kill@example.test'] });
  return shared;
}
after(async () => {
  if (shared) await (await shared).stop();
});

test('SIGKILL at 50 random moments of a 500-message fetch with --delete: every message exactly once, none left', async (t) => {
  if (!requirePeer(t, 'dovecot')) return;
  const d = await dovecot();
  const user = 'kill@example.test';
  const source = await d.maildirOf(user);
  const owner = { uid: d.mailUid, gid: d.mailGid };
  const fixtures = await writeMixedMessages(source, { count: 500, seed: 11, owner });
  const contents = await sourceContents(fixtures);
  const e = await prepare(t, d, user, d.popsPort);
  const seed = Number(process.env.POPGATE_CRASH_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (POPGATE_CRASH_SEED to replay)`);
  const random = prng(seed);
  // Calibrate: how long a whole 500-message run takes from the first JSON line to exit
  // (separate state and Maildir, no --delete), so kill moments spread over the real work.
  const calibration = {
    ...e,
    args: e.args.filter((a) => a !== '--delete').map((a) => (a === e.maildir ? `${e.dir}/calibration` : a)),
    env: { ...e.env, XDG_STATE_HOME: `${e.dir}/calibration-state` },
  };
  const probe = startCli(calibration);
  let firstLine = 0;
  const watch = setInterval(() => {
    if (firstLine === 0 && probe.lines.length > 0) firstLine = Date.now();
  }, 2);
  await probe.exit;
  clearInterval(watch);
  let window = Math.max(300, Date.now() - firstLine);
  t.diagnostic(`a whole run takes ${window} ms after the session is up`);
  let next = 100_000;
  let kills = 0;
  const phases = new Map<string, number>();
  for (let attempt = 0; kills < 50 && attempt < 250; attempt++) {
    if ((await onServer(source)) === 0) {
      // A run got through QUIT: deliver another 500 so later kills land mid-fetch again.
      const more = await writeUniformMessages(source, 500, 3000, { firstIndex: next, seed: 11, owner });
      next += 500;
      fixtures.push(...more);
      for (const [id, bytes] of await sourceContents(more)) contents.set(id, bytes);
    }
    const run = startCli(e);
    let upAt = 0;
    let exitedAt = 0;
    void run.exit.then(() => {
      exitedAt = Date.now();
    });
    const early = random() < 0.15;
    await new Promise<void>((resolve) => {
      const fire = () => {
        run.child.kill('SIGKILL');
        resolve();
      };
      if (early) {
        // Startup, recovery of the previous run's intents, TLS, authentication.
        setTimeout(fire, random() * 2000);
        return;
      }
      const poll = setInterval(() => {
        if (run.lines.length > 0 || run.child.exitCode !== null) {
          clearInterval(poll);
          upAt = Date.now();
          setTimeout(fire, random() * window);
        }
      }, 2);
    });
    const { code, signal } = await run.exit;
    const last = run.lines.filter(Boolean).at(-1);
    const lastPhase = last ? (JSON.parse(last) as { phase?: string }).phase : undefined;
    const phase = signal === 'SIGKILL' ? (lastPhase ?? 'startup') : `exited ${code}`;
    if (signal === 'SIGKILL') kills++;
    // A run that finished before its kill moment: the calibration ran slower than runs do now
    // (load on the shared cores comes and goes). Move the window halfway to this run's length,
    // so the kill moments keep spreading over the real work, its end (DELE, QUIT) included.
    else if (code === 0 && upAt > 0 && exitedAt >= upAt) {
      window = Math.max(100, Math.round((window + (exitedAt - upAt)) / 2));
    }
    phases.set(phase, (phases.get(phase) ?? 0) + 1);
  }
  t.diagnostic(`kills by phase: ${JSON.stringify(Object.fromEntries(phases))}`);
  assert.equal(kills, 50);
  const final = await runToEnd(e);
  assert.equal(final.code, 0, final.stderr);
  const again = await runToEnd(e);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.events.find((ev) => ev.type === 'account') as { fetched: number }).fetched, 0);
  await assertExactlyOnce(e.maildir, fixtures, contents);
  assert.equal(await onServer(source), 0, 'messages left on the server');
});
