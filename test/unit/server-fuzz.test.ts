// Property tests: whatever a client sends, the session answers each line with exactly one
// well-formed status line (or closes on a limit), and the server keeps serving others.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditRecorder } from '../helpers/server-watch.ts';
import { startTestServer, xoauth2 } from './server-helpers.ts';

const STATUS = /^(\+OK|-ERR)( [\x20-\x7e]*)?$/;

// A line without CR/LF: random bytes (latin1), or a command that answers on one line.
const lineArb = fc.oneof(
  fc
    .uint8Array({ maxLength: 120 })
    .map((bytes) => Buffer.from(bytes.filter((b) => b !== 10 && b !== 13)).toString('latin1')),
  fc.constantFrom(
    'NOOP',
    'STAT',
    'RSET',
    'DELE 1',
    'DELE 2',
    'LIST 1',
    'UIDL 2',
    'LIST 99',
    'TOP x y',
    'QUIX',
    'user',
  ),
  // With an argument (a bare `LIST ` would rightly answer multi-line).
  fc
    .tuple(
      fc.constantFrom('DELE', 'LIST', 'UIDL', 'noop', 'Stat'),
      fc.string({ minLength: 1, maxLength: 20 }),
    )
    .map(([verb, arg]) => `${verb} ${arg.replace(/[\r\n]/g, '').trim() || 'x'}`),
);

describe('session robustness (property)', () => {
  it('answers every line of random input with one well-formed status line', async (t) => {
    const audit = new AuditRecorder();
    const s = await startTestServer({ audit });
    t.after(() => s.close());
    let sessions = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineArb, { minLength: 1, maxLength: 15 }),
        fc.boolean(),
        async (lines, loggedIn) => {
          const c = loggedIn ? await s.login() : await s.client();
          sessions += 1;
          try {
            c.write(lines.map((l) => `${l}\r\n`).join(''));
            for (const _ of lines) {
              const answer = await c.line();
              assert.match(answer, STATUS);
            }
            // Still alive and in step.
            assert.match(await c.command('NOOP'), loggedIn ? /^\+OK/ : /^-ERR/);
          } finally {
            c.close();
            // The next run logs in again: wait until this session has ended (lock released).
            await audit.until(() => audit.logouts >= sessions);
          }
        },
      ),
      { numRuns: 60 },
    );
    const fresh = await s.client();
    assert.match(await fresh.command('CAPA'), /^\+OK/);
  });

  it('random SASL responses are refused cleanly, never crash or log in', async (t) => {
    const s = await startTestServer();
    t.after(() => s.close());
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('XOAUTH2', 'OAUTHBEARER'),
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')),
          fc.string({ maxLength: 100 }).map((s) => s.replace(/[\r\n]/g, '')),
          fc.string({ maxLength: 40 }).map((u) => xoauth2(u.replace(/[\r\n\x01]/g, ''), 'forged')),
        ),
        async (mechanism, response) => {
          const c = await s.client();
          try {
            c.write(`AUTH ${mechanism}\r\n`);
            assert.equal(await c.line(), '+ ');
            c.write(`${response}\r\n`);
            let answer = await c.line();
            if (answer.startsWith('+ ')) {
              c.write(mechanism === 'OAUTHBEARER' ? 'AQ==\r\n' : '\r\n');
              answer = await c.line();
            }
            assert.match(answer, /^-ERR/);
            assert.match(answer, STATUS);
          } finally {
            c.close();
          }
        },
      ),
      { numRuns: 80 },
    );
    assert.equal(s.store.locked.size, 0);
  });
});
