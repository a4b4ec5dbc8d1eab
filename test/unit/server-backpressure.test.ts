// The server's output bound on the wire (real sockets, port 0): a client that pipelines and
// never reads its answers must not grow the server's memory, in any state and for any command;
// it meets the idle timeout and the pre-login command cap; a client that reads gets every answer.
// The server side of each connection is observed through Node's `net.server.socket` channel
// (test/helpers/server-watch.ts): the peak of its output queue after every write, and the
// moment it stops reading because the queue is long.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { OUTPUT_HIGH_WATER } from '../../src/server/limits.ts';
import { AuditRecorder, ServerSocketWatch } from '../helpers/server-watch.ts';
import { rawLogin, startTestServer, type TestServer, xoauth2 } from './server-helpers.ts';

const PIPELINED = 100_000;
/** What a stalled session may hold: the high-water mark, one more answer, and slack. */
const BOUND = 2 * OUTPUT_HIGH_WATER;

interface Watched {
  s: TestServer;
  watch: ServerSocketWatch;
  audit: AuditRecorder;
  /** Raw client sockets, destroyed before the server closes (it waits for its connections). */
  clients: Socket[];
}

async function watchedServer(
  t: TestContext,
  overrides: Parameters<typeof startTestServer>[0] = {},
  setup?: Parameters<typeof startTestServer>[1],
): Promise<Watched> {
  const audit = new AuditRecorder();
  let port = 0;
  const watch = new ServerSocketWatch(() => port);
  const s = await startTestServer({ audit, ...overrides }, setup);
  port = s.port;
  const clients: Socket[] = [];
  t.after(async () => {
    for (const socket of clients) socket.destroy();
    await s.close();
    watch.stop();
  });
  return { s, watch, audit, clients };
}

/** A raw connection that never reads (no 'data' listener: the kernel buffers fill up). */
async function silentClient(w: Watched): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: w.s.port });
  w.clients.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Logs in on a raw socket and stops reading. */
async function silentLogin(w: Watched, user: string): Promise<Socket> {
  const socket = await rawLogin(w.s.port, `AUTH XOAUTH2 ${xoauth2(user, `tok-${user.split('@')[0]}`)}`);
  w.clients.push(socket);
  socket.pause();
  return socket;
}

/**
 * Reads until the peer half-closes ('end': our own unsent input may keep 'close' away) or the
 * connection closes; returns everything as latin1.
 */
function readToEnd(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', done);
    socket.once('close', done);
    socket.resume();
  });
}

describe('output bound: a client that does not read', () => {
  it('before login, pipelined CAPA that is never read stops being parsed: output bounded, idle timeout ends it', async (t) => {
    // ~140 octets per answer, ~14 MiB in all: more than the kernel buffers. The pre-login cap is
    // raised out of the way: the output bound alone must hold.
    const w = await watchedServer(t, {
      limits: { maxCommandsBeforeLogin: 1_000_000, idleTimeoutMs: 1_000 },
    });
    const socket = await silentClient(w);
    socket.write('CAPA\r\n'.repeat(PIPELINED));
    // No line is parsed while stalled, so nothing the client sends resets its idle timer.
    const logout = await w.audit.logout();
    assert.ok(w.watch.peakQueued < BOUND, `the server queued ${w.watch.peakQueued} octets`);
    assert.ok(
      logout.commands < PIPELINED / 2,
      `the server ran ${logout.commands} commands for a silent client`,
    );
    assert.equal(logout.how, 'idle');
  });

  it('in TRANSACTION, pipelined UIDL that is never read stops being parsed: output bounded, idle timeout ends it', async (t) => {
    const COUNT = 20_000; // ~600 octets per answer, ~12 MiB in all: more than the kernel buffers
    const w = await watchedServer(t, { limits: { idleTimeoutMs: 1_000 } }, (store) => {
      store.boxes.set(
        'carol@example.test',
        Array.from({ length: 50 }, (_, i) => ({
          uid: `uid-${i + 1}`,
          data: Buffer.from('Subject: x\r\n\r\nhi\r\n'),
        })),
      );
    });
    w.s.validator.tokens.set('tok-carol', { user: 'carol@example.test' });
    const socket = await silentLogin(w, 'carol@example.test');
    socket.write('UIDL\r\n'.repeat(COUNT));
    // No line is parsed while stalled, so nothing the client sends resets its idle timer.
    const logout = await w.audit.logout();
    assert.ok(w.watch.peakQueued < BOUND, `the server queued ${w.watch.peakQueued} octets`);
    assert.ok(logout.commands < COUNT / 2, `the server ran ${logout.commands} commands for a silent client`);
    assert.equal(logout.how, 'idle');
  });

  it('a client that stops reading in the middle of a RETR is disconnected by the idle timeout', async (t) => {
    const big = Buffer.alloc(8 * 1024 * 1024, 'x\r\n');
    const w = await watchedServer(t, { limits: { idleTimeoutMs: 500 } }, (store) => {
      store.wholeUpTo = big.length;
      store.boxes.set('dave@example.test', [{ uid: 'big', data: big }]);
    });
    w.s.validator.tokens.set('tok-dave', { user: 'dave@example.test' });
    const socket = await silentLogin(w, 'dave@example.test');
    socket.write('RETR 1\r\n');
    const logout = await w.audit.logout();
    assert.equal(logout.how, 'idle');
    assert.equal(logout.retr, 1);
  });

  it('the session is closed after maxCommandsBeforeLogin commands without a login', async (t) => {
    const w = await watchedServer(t);
    const socket = await silentClient(w);
    socket.write('CAPA\r\n'.repeat(PIPELINED));
    const logout = await w.audit.logout();
    assert.equal(logout.how, 'limit');
    assert.equal(logout.commands, 30);
    const wire = await readToEnd(socket);
    assert.equal(wire.split('+OK Capability list follows\r\n').length - 1, 30);
    assert.ok(wire.endsWith('\r\n.\r\n-ERR Too many commands before login; closing.\r\n'), wire.slice(-200));
  });

  it('a pipelined RETR burst that is not read pauses the session; reading again gets every answer', async (t) => {
    const COUNT = 3000; // 48 MiB: far more than the kernel's socket buffers take in
    const body = `Subject: big\r\n\r\n${`${'z'.repeat(1022)}\r\n`.repeat(16)}`;
    const w = await watchedServer(t, {}, (store) => {
      store.wholeUpTo = 64 * 1024;
      store.boxes.set(
        'frank@example.test',
        Array.from({ length: COUNT }, (_, i) => ({ uid: `u${i}`, data: Buffer.from(body) })),
      );
    });
    w.s.validator.tokens.set('tok-frank', { user: 'frank@example.test' });
    const socket = await silentLogin(w, 'frank@example.test');
    let burst = '';
    for (let i = 1; i <= COUNT; i++) burst += `RETR ${i}\r\n`;
    socket.write(burst);
    await w.watch.stalled();
    const readWhenStalled = w.s.store.reads;
    assert.ok(
      readWhenStalled < COUNT / 2,
      `the server read ${readWhenStalled} messages for a client not reading`,
    );
    assert.ok(w.watch.peakQueued < BOUND + body.length, `the server queued ${w.watch.peakQueued} octets`);
    // Reading again: every answer arrives, complete and in order.
    const answers = await countAnswers(socket, COUNT, () => true);
    assert.equal(answers, COUNT);
    assert.equal(w.s.store.reads, COUNT);
    assert.ok(w.watch.peakQueued < BOUND + body.length, `the server queued ${w.watch.peakQueued} octets`);
  });
});

describe('output bound: a client that reads', () => {
  it('gets every answer of 5,000 pipelined LIST and UIDL, in order, across a stall', async (t) => {
    const MESSAGES = 300; // ~2.5 KiB per answer, ~12 MiB in all: more than the kernel buffers
    const COUNT = 5000;
    const message = 'Subject: x\r\n\r\nhi\r\n';
    const w = await watchedServer(t, {}, (store) => {
      store.boxes.set(
        'carol@example.test',
        Array.from({ length: MESSAGES }, (_, i) => ({ uid: `u${i + 1}`, data: Buffer.from(message) })),
      );
    });
    w.s.validator.tokens.set('tok-carol', { user: 'carol@example.test' });
    const socket = await silentLogin(w, 'carol@example.test');
    const verbs = Array.from({ length: COUNT }, (_, i) => (i % 2 === 0 ? 'LIST' : 'UIDL'));
    socket.write(verbs.map((v) => `${v}\r\n`).join(''));
    // The client reads only once the server has stalled, so the stall and the resume both happen.
    await w.watch.stalled();
    const answers = await countAnswers(socket, COUNT, (index, answer) => {
      const lines = answer.split('\r\n');
      const status = lines[0]!;
      const body = lines.slice(1, -1);
      if (verbs[index] === 'LIST')
        return status.startsWith(`+OK ${MESSAGES} messages`) && body[0] === `1 ${message.length}`;
      return (
        status.startsWith('+OK') &&
        !status.includes('messages') &&
        body.length === MESSAGES &&
        body[MESSAGES - 1] === `${MESSAGES} u${MESSAGES}`
      );
    });
    assert.equal(answers, COUNT);
    assert.ok(w.watch.peakQueued < BOUND, `the server queued ${w.watch.peakQueued} octets`);
    socket.write('QUIT\r\n');
    assert.match(await readToEnd(socket), /^\+OK /);
  });
});

/**
 * Reads multi-line answers until `expected` have arrived (each ends with CRLF.CRLF, and none of
 * these bodies has a line starting with a dot); `check(index, answer)` vets each one (the
 * answer's text without its terminating `.` line). Resolves with the count; rejects on a bad
 * answer or a close.
 */
function countAnswers(
  socket: Socket,
  expected: number,
  check: (index: number, answer: string) => boolean,
): Promise<number> {
  const TERM = '\r\n.\r\n';
  let pending = '';
  let answers = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let start = 0;
      for (let at = pending.indexOf(TERM); at !== -1; at = pending.indexOf(TERM, start)) {
        const answer = pending.slice(start, at + 2);
        start = at + TERM.length;
        if (!check(answers, answer)) {
          done();
          reject(new Error(`answer ${answers} is wrong: ${JSON.stringify(answer.slice(0, 200))}`));
          return;
        }
        answers += 1;
        if (answers === expected) {
          done();
          resolve(answers);
          return;
        }
      }
      pending = pending.slice(start);
    };
    const onClose = () => {
      done();
      reject(new Error(`closed after ${answers} answers`));
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
