import { SaslError } from '../errors.ts';

export const SASL_MECHANISMS = ['OAUTHBEARER', 'XOAUTH2', 'PLAIN'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Normalises a mechanism name; unknown names are ERR_SASL_MECHANISM. */
export function toSaslMechanism(name: string): SaslMechanism {
  const upper = name.toUpperCase();
  if ((SASL_MECHANISMS as readonly string[]).includes(upper)) return upper as SaslMechanism;
  throw new SaslError(
    'ERR_SASL_MECHANISM',
    `unknown SASL mechanism; use one of ${SASL_MECHANISMS.join(', ')}`,
  );
}
