/**
 * The proxy's command table (architecture.md R2): each verb with the states it is valid in and
 * its argument count, checked once by {@link resolveProxyCommand} before a handler runs. No
 * dispatch by a name built from input; refusal texts never echo the input.
 */
import type { ParsedCommand } from '../protocol/command.ts';
import { parseCommandLine } from '../protocol/command.ts';
import { AUTH_LINE_ROOM } from '../server/limits.ts';
import { proxyCapabilities } from './capabilities.ts';
import type { ProxyContext, ProxyState } from './context.ts';
import { authCommand, passCommand, userCommand } from './local-auth.ts';
import * as relay from './relay.ts';

export interface ProxyCommand {
  readonly verb: string;
  readonly states: readonly ProxyState[];
  readonly minArgs: number;
  readonly maxArgs: number;
  /** PASS takes the whole rest of the line, spaces included (RFC 1939 §7). */
  readonly restOfLine?: boolean;
  /**
   * A relayed command that may be sent upstream ahead of its turn (everything but QUIT): sends
   * it now and returns the step that answers it; the session passes that step to {@link run}.
   */
  readonly start?: (ctx: ProxyContext, args: readonly string[]) => relay.Finish;
  run(ctx: ProxyContext, args: readonly string[], started?: relay.Finish): Promise<void> | void;
}

const A: readonly ProxyState[] = ['AUTHORIZATION'];
const T: readonly ProxyState[] = ['TRANSACTION'];
const BOTH: readonly ProxyState[] = ['AUTHORIZATION', 'TRANSACTION'];

/**
 * Runs a relayed command on the upstream client (started ahead by the session, or now); its
 * failures answer through relayFailure. `ahead: false` keeps it from being sent before its turn.
 */
function relayed(
  verb: string,
  minArgs: number,
  maxArgs: number,
  fn: relay.Relay,
  ahead = true,
): ProxyCommand {
  const start = (ctx: ProxyContext, args: readonly string[]) => fn(ctx.upstream!, args);
  return {
    verb,
    states: T,
    minArgs,
    maxArgs,
    ...(ahead ? { start } : {}),
    async run(ctx, args, started) {
      ctx.shared.metrics?.commands.inc({ verb });
      try {
        await (started ?? start(ctx, args))(ctx);
      } catch (error) {
        if (ctx.answered()) throw error; // half an answer is on the wire: the session must close
        relay.relayFailure(ctx, error);
      }
    },
  };
}

const TABLE: readonly ProxyCommand[] = [
  {
    verb: 'CAPA',
    states: BOTH,
    minArgs: 0,
    maxArgs: 0,
    run: (ctx) => ctx.multiline('Capability list follows', proxyCapabilities(ctx)),
  },
  { verb: 'USER', states: A, minArgs: 1, maxArgs: 1, run: (ctx, args) => userCommand(ctx, args[0]!) },
  {
    verb: 'PASS',
    states: A,
    minArgs: 1,
    maxArgs: 1,
    restOfLine: true,
    run: (ctx, args) => passCommand(ctx, args[0]!),
  },
  { verb: 'AUTH', states: A, minArgs: 0, maxArgs: 2, run: (ctx, args) => authCommand(ctx, args) },
  {
    verb: 'STLS',
    states: A,
    minArgs: 0,
    maxArgs: 0,
    async run(ctx) {
      if (ctx.secure) return ctx.err('TLS is already active');
      if (!ctx.stlsAvailable) return ctx.err('STLS is not available here');
      ctx.ok('Begin TLS negotiation now');
      await ctx.startTls();
    },
  },
  {
    verb: 'QUIT',
    states: A,
    minArgs: 0,
    maxArgs: 0,
    run(ctx) {
      ctx.ok('popgate: bye');
      ctx.end('quit');
    },
  },
  relayed('STAT', 0, 0, relay.stat),
  relayed('LIST', 0, 1, relay.list),
  relayed('UIDL', 0, 1, relay.uidl),
  relayed('RETR', 1, 1, relay.retr),
  relayed('TOP', 2, 2, relay.top),
  relayed('DELE', 1, 1, relay.dele),
  relayed('RSET', 0, 0, relay.rset),
  relayed('NOOP', 0, 0, relay.noop),
  relayed('QUIT', 0, 0, relay.quit, false),
];

const BY_STATE = new Map<ProxyState, ReadonlyMap<string, ProxyCommand>>(
  (['AUTHORIZATION', 'TRANSACTION'] as const).map((state) => [
    state,
    new Map(TABLE.filter((c) => c.states.includes(state)).map((c) => [c.verb, c])),
  ]),
);
const KNOWN = new Set(TABLE.map((c) => c.verb));

export type ProxyResolution =
  | { readonly kind: 'run'; readonly command: ProxyCommand; readonly args: readonly string[] }
  | { readonly kind: 'refuse'; readonly text: string; readonly bad: boolean; readonly fatal: boolean };

/** Resolves one command line (without CRLF) in `state`. */
export function resolveProxyCommand(
  state: ProxyState,
  line: Buffer,
  limits: { commandLineLength: number; maxSaslResponse: number },
): ProxyResolution {
  const isAuth = /^auth /i.test(line.subarray(0, 5).toString('latin1'));
  const max = isAuth ? limits.maxSaslResponse + AUTH_LINE_ROOM : limits.commandLineLength;
  if (line.length + 2 > max)
    return { kind: 'refuse', text: 'Command line too long; closing', bad: false, fatal: true };
  let parsed: ParsedCommand;
  try {
    parsed = parseCommandLine(line, max);
  } catch {
    return { kind: 'refuse', text: 'Malformed command', bad: true, fatal: false };
  }
  const command = BY_STATE.get(state)!.get(parsed.verb);
  if (command === undefined) {
    if (KNOWN.has(parsed.verb)) {
      return {
        kind: 'refuse',
        text: `${parsed.verb} is not valid in the ${state} state`,
        bad: false,
        fatal: false,
      };
    }
    return { kind: 'refuse', text: 'Unknown command', bad: true, fatal: false };
  }
  const args = command.restOfLine ? (parsed.rest === '' ? [] : [parsed.rest]) : parsed.args;
  if (args.length < command.minArgs || args.length > command.maxArgs) {
    return {
      kind: 'refuse',
      text: `Wrong number of arguments for ${command.verb}`,
      bad: false,
      fatal: false,
    };
  }
  return { kind: 'run', command, args };
}
