/**
 * `node:diagnostics_channel` events of the client (undici's pattern). Payloads are redacted
 * where they are built: command lines through redactCommandLine, SASL lines as [REDACTED].
 *
 * - `popgate:pop3:connect`  `{ host, port, tls, phase: 'tcp' | 'tls' | 'ready' }`
 * - `popgate:pop3:command`  `{ host, port, command }`
 * - `popgate:pop3:response` `{ host, port, status: 'ok' | 'err' | 'continue', code?, text }`
 */
import diagnostics from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS } from '../diagnostics.ts';

export const connectChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.pop3Connect.name);
export const commandChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.pop3Command.name);
export const responseChannel = diagnostics.channel(DIAGNOSTICS_CHANNELS.pop3Response.name);
