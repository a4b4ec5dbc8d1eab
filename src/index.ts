/**
 * popgate's main entry: the POP3 client and the error classes, plus the wire-level helpers as
 * namespaces. The server, OAuth, fetcher, store and auth parts have their own subpath exports
 * (`popgate/server`, `popgate/oauth`, ...) so importing the client does not load them.
 */
export * from './client/index.ts';
export * from './errors.ts';
export * as protocol from './protocol/index.ts';
export * as sasl from './sasl/index.ts';
export { VERSION } from './version.ts';
