import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextState } from '../../src/server/state.ts';
import { AuditRecorder } from '../helpers/server-watch.ts';
import { startTestServer } from './server-helpers.ts';

describe('session state machine', () => {
  it('moves AUTHORIZATION → TRANSACTION on login and TRANSACTION → UPDATE on quit', () => {
    assert.equal(nextState('AUTHORIZATION', 'login'), 'TRANSACTION');
    assert.equal(nextState('TRANSACTION', 'quit'), 'UPDATE');
  });

  it('refuses transitions that do not exist', () => {
    assert.throws(() => nextState('AUTHORIZATION', 'quit'));
    assert.throws(() => nextState('UPDATE', 'login'));
    assert.throws(() => nextState('TRANSACTION', 'login'));
  });
});

describe('POP3 commands', () => {
  it('greets with +OK and answers QUIT in AUTHORIZATION by closing', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    assert.match(await c.command('QUIT'), /^\+OK/);
    await c.waitClosed();
  });

  it('refuses transaction commands in AUTHORIZATION and keeps the session', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    for (const verb of ['STAT', 'LIST', 'UIDL', 'RETR 1', 'TOP 1 0', 'DELE 1', 'RSET', 'NOOP']) {
      assert.match(await c.command(verb), /^-ERR .*not valid in the AUTHORIZATION state/, verb);
    }
    assert.match(await c.command('CAPA'), /^\+OK/);
  });

  it('answers unknown, malformed and wrongly-argued commands with -ERR', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.equal(await c.command('FOO'), '-ERR Unknown command.');
    assert.equal(await c.command('APOP a b'), '-ERR Unknown command.');
    assert.equal(await c.command('X'), '-ERR Malformed command.');
    assert.equal(await c.command('LIST  1'), '-ERR Malformed command.');
    assert.equal(await c.command('STAT 1'), '-ERR Wrong number of arguments for STAT.');
    assert.equal(await c.command('RETR'), '-ERR Wrong number of arguments for RETR.');
    assert.equal(await c.command('TOP 1'), '-ERR Wrong number of arguments for TOP.');
    assert.match(await c.command('NOOP'), /^\+OK/);
  });

  it('accepts verbs in any case', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.match(await c.command('stat'), /^\+OK 2 /);
    assert.match(await c.command('NoOp'), /^\+OK/);
  });

  it('STAT, LIST and UIDL report exact sizes and stable ids', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const box = s.store.boxes.get('alice@example.test')!;
    const sizes = box.map((m) => m.data.length);
    const c = await s.login();
    assert.equal(await c.command('STAT'), `+OK 2 ${sizes[0]! + sizes[1]!}`);
    const [, list] = await c.multi('LIST');
    assert.deepEqual(list, [`1 ${sizes[0]}`, `2 ${sizes[1]}`]);
    assert.equal(await c.command('LIST 2'), `+OK 2 ${sizes[1]}`);
    const [, uidl] = await c.multi('UIDL');
    assert.deepEqual(uidl, [`1 ${box[0]!.uid}`, `2 ${box[1]!.uid}`]);
    assert.equal(await c.command('UIDL 1'), `+OK 1 ${box[0]!.uid}`);
  });

  it('LIST, UIDL and RETR refuse numbers that do not exist', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.equal(await c.command('LIST 3'), '-ERR There is no such message.');
    assert.equal(await c.command('LIST 0'), '-ERR There is no such message.');
    assert.equal(await c.command('RETR x'), '-ERR Invalid message number.');
    assert.equal(await c.command('UIDL -1'), '-ERR Invalid message number.');
  });

  it('RETR sends the message dot-stuffed with its size', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.equal(
      await c.command('RETR 2'),
      `+OK ${s.store.boxes.get('alice@example.test')![1]!.data.length} octets`,
    );
    // The raw wire carries "..dot line"; the unstuffed body has ".dot line".
    assert.deepEqual(await c.body(), ['Subject: two', '', '.dot line', 'bye']);
  });

  it('RETR puts the stuffed dot on the wire', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    c.write('RETR 2\r\n');
    await c.line();
    const lines = [await c.line(), await c.line(), await c.line(), await c.line(), await c.line()];
    assert.deepEqual(lines, ['Subject: two', '', '..dot line', 'bye', '.']);
  });

  it('TOP sends the header, the blank line and n body lines', async (t) => {
    const s = await startTestServer({}, (store) => {
      store.add('carol@example.test', 'A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n');
    });
    s.validator.tokens.set('tok-carol', { user: 'carol@example.test' });
    t.after(() => s.close());
    const c = await s.login('carol@example.test');
    assert.deepEqual((await c.multi('TOP 1 0'))[1], ['A: 1', 'B: 2', '']);
    assert.deepEqual((await c.multi('TOP 1 2'))[1], ['A: 1', 'B: 2', '', 'l1', 'l2']);
    assert.deepEqual((await c.multi('TOP 1 99'))[1], ['A: 1', 'B: 2', '', 'l1', 'l2', 'l3']);
    assert.equal(await c.command('TOP 1 x'), '-ERR Invalid number of lines.');
  });

  it('DELE only marks: numbers stay fixed and a deleted message cannot be used', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    assert.match(await c.command('DELE 1'), /^\+OK/);
    assert.equal(await c.command('RETR 1'), '-ERR Message is deleted.');
    assert.equal(await c.command('DELE 1'), '-ERR Message is deleted.');
    assert.equal(await c.command('LIST 1'), '-ERR Message is deleted.');
    const [, list] = await c.multi('LIST');
    assert.equal(list.length, 1);
    assert.match(list[0]!, /^2 /);
    assert.match(await c.command('STAT'), /^\+OK 1 /);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 2, 'nothing removed before UPDATE');
  });

  it('RSET unmarks deleted messages', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    await c.command('DELE 1');
    await c.command('DELE 2');
    assert.match(await c.command('RSET'), /^\+OK/);
    assert.match(await c.command('STAT'), /^\+OK 2 /);
    assert.match(await c.command('QUIT'), /^\+OK .*0 messages deleted/);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 2);
  });

  it('QUIT in TRANSACTION commits the marked deletions in one UPDATE', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    await c.command('DELE 2');
    assert.match(await c.command('QUIT'), /^\+OK .*1 messages deleted/);
    await c.waitClosed();
    assert.deepEqual(s.store.commits, [{ user: 'alice@example.test', deleted: [1] }]);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 1);
    assert.equal(s.store.locked.size, 0);
  });

  it('a dropped connection deletes nothing and releases the lock', async (t) => {
    const audit = new AuditRecorder();
    const s = await startTestServer({ audit });
    t.after(() => s.close());
    const c = await s.login();
    await c.command('DELE 1');
    c.close();
    // The logout event comes after the maildrop is released.
    assert.equal((await audit.logout()).how, 'dropped');
    assert.equal(s.store.locked.size, 0);
    assert.equal(s.store.commits.length, 0);
    assert.equal(s.store.boxes.get('alice@example.test')!.length, 2);
  });

  it('a second session of the same user gets -ERR [IN-USE]', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    await s.login();
    const c2 = await s.client();
    const answer = await c2.command(
      `AUTH XOAUTH2 ${(await import('./server-helpers.ts')).xoauth2('alice@example.test', 'tok-alice')}`,
    );
    assert.match(answer, /^-ERR \[IN-USE\] /);
  });

  it('a store failure on open answers -ERR [SYS/TEMP]', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    s.store.failOpen = new Error('disk on fire');
    const c = await s.client();
    const { xoauth2 } = await import('./server-helpers.ts');
    assert.match(
      await c.command(`AUTH XOAUTH2 ${xoauth2('alice@example.test', 'tok-alice')}`),
      /^-ERR \[SYS\/TEMP\] /,
    );
  });

  it('answers pipelined commands strictly in order', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.login();
    c.write('STAT\r\nLIST 1\r\nRETR 1\r\nUIDL 2\r\nFOO\r\nNOOP\r\n');
    assert.match(await c.line(), /^\+OK 2 /);
    assert.match(await c.line(), /^\+OK 1 /);
    assert.match(await c.line(), /^\+OK \d+ octets/);
    assert.deepEqual(await c.body(), ['Subject: one', '', 'Hello']);
    assert.match(await c.line(), /^\+OK 2 uid-2/);
    assert.equal(await c.line(), '-ERR Unknown command.');
    assert.match(await c.line(), /^\+OK/);
  });

  it('answers a long pipelined burst of RETRs completely and in order', async (t) => {
    const s = await startTestServer({}, (store) => {
      for (let i = 0; i < 200; i++)
        store.add('dave@example.test', `Subject: ${i}\r\n\r\n${'x'.repeat(i * 13)}\r\n`);
    });
    s.validator.tokens.set('tok-dave', { user: 'dave@example.test' });
    t.after(() => s.close());
    const c = await s.login('dave@example.test');
    let burst = '';
    for (let i = 1; i <= 200; i++) burst += `RETR ${i}\r\n`;
    c.write(burst);
    for (let i = 1; i <= 200; i++) {
      // A generous bound: the store serves 7-octet chunks, slow on a loaded machine.
      assert.match(await c.line(30_000), /^\+OK \d+ octets/);
      const body = await c.body(30_000);
      assert.equal(body[0], `Subject: ${i - 1}`);
    }
  });

  it('a pipelined burst mixing whole and streamed messages is answered in order, byte for byte', async (t) => {
    const bodies: string[] = [];
    const s = await startTestServer({}, (store) => {
      store.wholeUpTo = 3000;
      for (let i = 0; i < 300; i++) {
        // Dots at line starts, bare LFs, a missing final line end, sizes around the cut-over.
        const body = `Subject: ${i}\r\n\r\n.lead\n${'y'.repeat((i * 37) % 6000)}\r\n..\r\n${i % 3 ? 'end' : '.\r\n'}`;
        bodies.push(body);
        store.add('erin@example.test', body);
      }
    });
    s.validator.tokens.set('tok-erin', { user: 'erin@example.test' });
    t.after(() => s.close());
    const c = await s.login('erin@example.test');
    let burst = '';
    for (let i = 1; i <= 300; i++) burst += `RETR ${i}\r\n`;
    c.write(`${burst}NOOP\r\n`);
    for (let i = 1; i <= 300; i++) {
      assert.match(await c.line(30_000), /^\+OK \d+ octets/);
      const expected = bodies[i - 1]!.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '').split('\r\n');
      assert.deepEqual(await c.body(30_000), expected, `message ${i}`);
    }
    assert.equal(await c.line(), '+OK');
  });

  it('closes the connection on a command line over the limit', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    c.write(`NOOP ${'a'.repeat(600)}\r\n`);
    assert.equal(await c.line(), '-ERR Command line too long; closing.');
    await c.waitClosed();
  });

  it('closes the connection when a line grows past the hard cap without a line end', async (t) => {
    const s = await startTestServer({ limits: { maxSaslResponse: 1024 } });
    t.after(() => s.close());
    const c = await s.client();
    c.write('A'.repeat(4096));
    await c.waitClosed();
  });

  it('closes after too many unknown commands', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    const c = await s.client();
    c.write('XXXX\r\n'.repeat(25));
    const rest = await c.waitClosed();
    assert.match(rest, /Too many commands; closing/);
  });

  it('closes an idle session with -ERR', async (t) => {
    const s = await startTestServer({ limits: { idleTimeoutMs: 50 } });
    t.after(() => s.close());
    const c = await s.client();
    assert.equal(await c.line(), '-ERR Disconnected for inactivity.');
    await c.waitClosed();
  });

  it('ends the session when the token expires (+ grace), committing nothing', async (t) => {
    const s = await startTestServer({ limits: { tokenExpiryGraceMs: 0 } });
    s.validator.tokens.set('tok-eve', { user: 'eve@example.test', expiresInMs: 300 });
    t.after(() => s.close());
    const c = await s.login('eve@example.test');
    assert.match(await c.line(), /^-ERR \[AUTH\] The access token expired/);
    await c.waitClosed();
    assert.equal(s.store.commits.length, 0);
  });
});
