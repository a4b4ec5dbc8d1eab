/** The POP3 client library. */
export { commandChannel, connectChannel, responseChannel } from './diagnostics.ts';
export { isLoopbackHost, type Pop3ClientOptions, type Pop3TlsMode } from './options.ts';
export {
  type AuthenticateOptions,
  type CallOptions,
  Pop3Client,
  type Pop3ClientState,
  type RetrievedMessage,
  type TokenProvider,
} from './pop3-client.ts';
