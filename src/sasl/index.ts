/** SASL mechanisms for POP3 AUTH (RFC 5034): XOAUTH2, OAUTHBEARER (RFC 7628), PLAIN (RFC 4616). */
export * from './base64.ts';
export * from './bearer.ts';
export * from './error-challenge.ts';
export * from './mechanisms.ts';
export * from './oauthbearer.ts';
export * from './plain.ts';
export * from './xoauth2.ts';
