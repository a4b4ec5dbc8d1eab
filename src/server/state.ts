/**
 * The POP3 session state machine (RFC 1939 §3): AUTHORIZATION → TRANSACTION → UPDATE.
 * One string-literal union instead of scattered flags; every transition goes through
 * {@link nextState}, so an impossible transition is a programming error, not a wire state.
 */

/** RFC 1939 §3 session states. */
export type SessionState = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

/** Events that move a session between states. */
export type SessionEvent = 'login' | 'quit';

const TRANSITIONS: Readonly<Record<SessionState, Partial<Record<SessionEvent, SessionState>>>> = {
  AUTHORIZATION: { login: 'TRANSACTION' },
  TRANSACTION: { quit: 'UPDATE' },
  UPDATE: {},
};

/**
 * The state after `event`, or throws when the transition does not exist (a bug in a command
 * handler: the command resolver only lets a handler run in the states it declares).
 *
 * @example nextState('AUTHORIZATION', 'login') // 'TRANSACTION'
 */
export function nextState(state: SessionState, event: SessionEvent): SessionState {
  const next = TRANSITIONS[state][event];
  if (next === undefined) throw new Error(`no transition from ${state} on ${event}`);
  return next;
}
