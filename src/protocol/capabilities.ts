/**
 * The RFC 2449 §6 CAPA model: every standard tag parsed, unknown tags kept, and a serializer
 * for the server side.
 */
export interface Pop3Capabilities {
  /** TOP (RFC 2449 §6.1). */
  readonly top: boolean;
  /** USER/PASS offered (§6.2). */
  readonly user: boolean;
  /** SASL mechanisms offered, upper-cased (§6.3, RFC 5034). */
  readonly sasl: readonly string[];
  /** RESP-CODES (§6.4). */
  readonly respCodes: boolean;
  /** AUTH-RESP-CODE (RFC 3206). */
  readonly authRespCode: boolean;
  /** LOGIN-DELAY seconds, and whether it varies per user (§6.5). */
  readonly loginDelay: { readonly seconds: number; readonly perUser: boolean } | undefined;
  /** PIPELINING (§6.6). */
  readonly pipelining: boolean;
  /** EXPIRE: days or 'NEVER', and whether it varies per user (§6.7). */
  readonly expire: { readonly days: number | 'NEVER'; readonly perUser: boolean } | undefined;
  /** UIDL (§6.8). */
  readonly uidl: boolean;
  /** IMPLEMENTATION text (§6.9). */
  readonly implementation: string | undefined;
  /** STLS (RFC 2595 §4). */
  readonly stls: boolean;
  /** Every tag not listed above, upper-cased, with its arguments. */
  readonly other: ReadonlyMap<string, readonly string[]>;
  /** The lines as received (capped by the multi-line limit). */
  readonly raw: readonly string[];
}

const DELAY = /^(?:0|[1-9][0-9]{0,9})$/;

/** Builds the model from CAPA's lines (without the terminator). Malformed values are ignored. */
export function parseCapabilities(lines: readonly string[]): Pop3Capabilities {
  const caps = {
    top: false,
    user: false,
    sasl: [] as string[],
    respCodes: false,
    authRespCode: false,
    loginDelay: undefined as Pop3Capabilities['loginDelay'],
    pipelining: false,
    expire: undefined as Pop3Capabilities['expire'],
    uidl: false,
    implementation: undefined as string | undefined,
    stls: false,
    other: new Map<string, readonly string[]>(),
    raw: [...lines],
  };
  for (const line of lines) {
    const [rawTag, ...args] = line.trim().split(/ +/);
    if (!rawTag) continue;
    const tag = rawTag.toUpperCase();
    switch (tag) {
      case 'TOP':
        caps.top = true;
        break;
      case 'USER':
        caps.user = true;
        break;
      case 'SASL':
        for (const m of args) if (!caps.sasl.includes(m.toUpperCase())) caps.sasl.push(m.toUpperCase());
        break;
      case 'RESP-CODES':
        caps.respCodes = true;
        break;
      case 'AUTH-RESP-CODE':
        caps.authRespCode = true;
        break;
      case 'LOGIN-DELAY':
        if (args[0] && DELAY.test(args[0])) {
          caps.loginDelay = { seconds: Number(args[0]), perUser: args[1]?.toUpperCase() === 'USER' };
        }
        break;
      case 'PIPELINING':
        caps.pipelining = true;
        break;
      case 'EXPIRE':
        if (args[0] && (DELAY.test(args[0]) || args[0].toUpperCase() === 'NEVER')) {
          caps.expire = {
            days: args[0].toUpperCase() === 'NEVER' ? 'NEVER' : Number(args[0]),
            perUser: args[1]?.toUpperCase() === 'USER',
          };
        }
        break;
      case 'UIDL':
        caps.uidl = true;
        break;
      case 'IMPLEMENTATION':
        caps.implementation = line.trim().slice(rawTag.length).trim();
        break;
      case 'STLS':
        caps.stls = true;
        break;
      default:
        caps.other.set(tag, args);
    }
  }
  return Object.freeze(caps);
}

/** Input for {@link serializeCapabilities}: any subset of the model. */
export type CapabilitiesInput = Partial<Omit<Pop3Capabilities, 'raw'>>;

/** CAPA lines for a server, in RFC 2449's order (no terminator, no CRLF). */
export function serializeCapabilities(caps: CapabilitiesInput): string[] {
  const lines: string[] = [];
  if (caps.top) lines.push('TOP');
  if (caps.user) lines.push('USER');
  if (caps.sasl && caps.sasl.length > 0) lines.push(`SASL ${caps.sasl.join(' ')}`);
  if (caps.respCodes) lines.push('RESP-CODES');
  if (caps.authRespCode) lines.push('AUTH-RESP-CODE');
  if (caps.loginDelay)
    lines.push(`LOGIN-DELAY ${caps.loginDelay.seconds}${caps.loginDelay.perUser ? ' USER' : ''}`);
  if (caps.pipelining) lines.push('PIPELINING');
  if (caps.expire) lines.push(`EXPIRE ${caps.expire.days}${caps.expire.perUser ? ' USER' : ''}`);
  if (caps.uidl) lines.push('UIDL');
  if (caps.implementation) lines.push(`IMPLEMENTATION ${caps.implementation.replace(/[\r\n\0]/g, ' ')}`);
  if (caps.stls) lines.push('STLS');
  for (const [tag, args] of caps.other ?? []) lines.push([tag, ...args].join(' '));
  return lines;
}
