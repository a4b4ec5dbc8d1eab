// The development authorization server (oidc-provider) used by tests, benchmarks and the demo.
// Not shipped: dev/ is outside the package's files and build.
export { startAuthorizationServer } from './server.ts';
export { publicJwkOf } from './signing-keys.ts';
export type {
  AuthorizationServer,
  AuthorizationServerOptions,
  ClientInfo,
  OidcProvider,
} from './types.ts';
