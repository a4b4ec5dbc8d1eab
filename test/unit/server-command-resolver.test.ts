// The pure command resolver: one received line, the registry, the session state and the limits
// give either the handler to run with its arguments or a refusal, with no socket and no session.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CommandRefusal, type Resolution, resolveCommand } from '../../src/server/command-resolver.ts';
import { COMMAND_REGISTRY } from '../../src/server/commands/index.ts';
import { AUTH_LINE_ROOM, DEFAULT_LIMITS } from '../../src/server/limits.ts';
import type { SessionState } from '../../src/server/state.ts';

const LIMITS = { commandLineLength: 512, maxSaslResponse: 1024 };

function resolve(line: string, state: SessionState = 'AUTHORIZATION', limits = LIMITS): Resolution {
  return resolveCommand(COMMAND_REGISTRY, state, Buffer.from(line, 'latin1'), limits);
}

function refusal(resolution: Resolution): CommandRefusal {
  assert.equal(resolution.kind, 'refuse', 'expected a refusal');
  return resolution as CommandRefusal;
}

function ran(resolution: Resolution): { verb: string; args: readonly string[] } {
  assert.equal(resolution.kind, 'run', `expected a handler, got ${JSON.stringify(resolution)}`);
  if (resolution.kind !== 'run') throw new Error('unreachable');
  return { verb: resolution.handler.verb, args: resolution.args };
}

/** A line of exactly `octets` octets with CRLF: `prefix` padded with `x`. */
function lineOf(prefix: string, octets: number): string {
  return prefix + 'x'.repeat(octets - 2 - prefix.length);
}

describe('resolveCommand', () => {
  it('resolves a known verb in a valid state to its handler and arguments', () => {
    assert.deepEqual(ran(resolve('TOP 1 10', 'TRANSACTION')), { verb: 'TOP', args: ['1', '10'] });
  });

  it('accepts the verb in any case', () => {
    assert.equal(ran(resolve('stat', 'TRANSACTION')).verb, 'STAT');
  });

  it('gives PASS the rest of the line, spaces included', () => {
    assert.deepEqual(ran(resolve('PASS secret with  spaces')).args, ['secret with  spaces']);
  });

  it('refuses an unknown verb as unknown, counted as a bad command', () => {
    const r = refusal(resolve('XYZZ'));
    assert.deepEqual([r.reason, r.text, r.bad, r.fatal], ['unknown', 'Unknown command.', true, false]);
  });

  it('refuses a verb the session does not offer as unknown', () => {
    const r = resolveCommand(COMMAND_REGISTRY, 'AUTHORIZATION', Buffer.from('USER alice'), LIMITS, (h) => {
      return h.verb !== 'USER';
    });
    assert.equal(refusal(r).reason, 'unknown');
  });

  it('refuses a malformed line, counted as a bad command', () => {
    const r = refusal(resolve('RETR\x011'));
    assert.deepEqual([r.reason, r.text, r.bad, r.fatal], ['malformed', 'Malformed command.', true, false]);
  });

  it('refuses a verb in the wrong state, naming verb and state, not counted as bad', () => {
    const r = refusal(resolve('STAT', 'AUTHORIZATION'));
    assert.deepEqual(
      [r.reason, r.text, r.bad, r.fatal],
      ['wrong-state', 'STAT is not valid in the AUTHORIZATION state.', false, false],
    );
  });

  it('refuses a valid verb in UPDATE', () => {
    assert.equal(refusal(resolve('NOOP', 'UPDATE')).reason, 'wrong-state');
  });

  it('refuses too few arguments', () => {
    const r = refusal(resolve('TOP 1', 'TRANSACTION'));
    assert.deepEqual(
      [r.reason, r.text, r.bad],
      ['wrong-arguments', 'Wrong number of arguments for TOP.', false],
    );
  });

  it('refuses too many arguments', () => {
    assert.equal(refusal(resolve('STAT 1', 'TRANSACTION')).reason, 'wrong-arguments');
  });

  it('accepts a command line exactly at the command cap', () => {
    assert.equal(ran(resolve(lineOf('PASS ', LIMITS.commandLineLength))).verb, 'PASS');
  });

  it('refuses a command line one octet over the cap, and the session closes', () => {
    const r = refusal(resolve(lineOf('PASS ', LIMITS.commandLineLength + 1)));
    assert.deepEqual(
      [r.reason, r.text, r.bad, r.fatal],
      ['too-long', 'Command line too long; closing.', false, true],
    );
  });

  it('refuses an over-long line before parsing it (no verb, no state check)', () => {
    assert.equal(refusal(resolve(lineOf('\x00', 4096), 'UPDATE')).reason, 'too-long');
  });

  it('lets an AUTH line reach the SASL cap plus its room', () => {
    const max = LIMITS.maxSaslResponse + AUTH_LINE_ROOM;
    assert.equal(ran(resolve(lineOf('AUTH XOAUTH2 ', max))).verb, 'AUTH');
    assert.equal(ran(resolve(lineOf('auth XOAUTH2 ', max))).verb, 'AUTH');
  });

  it('refuses an AUTH line one octet over the SASL cap plus its room', () => {
    const r = refusal(resolve(lineOf('AUTH XOAUTH2 ', LIMITS.maxSaslResponse + AUTH_LINE_ROOM + 1)));
    assert.deepEqual([r.reason, r.fatal], ['too-long', true]);
  });

  it('holds a non-AUTH line of AUTH length to the command cap', () => {
    assert.equal(refusal(resolve(lineOf('PASS ', LIMITS.maxSaslResponse))).reason, 'too-long');
  });

  it('uses the default limits: an AUTH line of 64 KiB passes', () => {
    const line = lineOf('AUTH OAUTHBEARER ', DEFAULT_LIMITS.maxSaslResponse);
    assert.equal(ran(resolve(line, 'AUTHORIZATION', DEFAULT_LIMITS)).verb, 'AUTH');
  });
});
