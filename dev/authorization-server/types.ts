/**
 * The shapes of the development authorization server: its options, the handle tests get back, and
 * the part of oidc-provider's surface the server uses (oidc-provider ships no types).
 */
import type { webcrypto } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface AuthorizationServerOptions {
  /** Serve https with this certificate and key (PEM); plain http when absent. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string };
  /** Access token lifetime in seconds. Default 300. */
  readonly accessTokenTtl?: number;
  /** Refresh token lifetime in seconds. Default 86 400. */
  readonly refreshTokenTtl?: number;
  /** Device code lifetime in seconds. Default 600. */
  readonly deviceCodeTtl?: number;
  /** Audience of the JWT access tokens. Default `pop3://localhost`. */
  readonly pop3Audience?: string;
  /** Audience of the opaque (introspectable) access tokens. Default `pop3-opaque://localhost`. */
  readonly opaqueAudience?: string;
  /**
   * `typ` header of JWT access tokens. Default `at+jwt` (RFC 9068); Dovecot 2.3 accepts only
   * `JWT`, so a test against Dovecot sets `JWT`.
   */
  readonly accessTokenTyp?: 'at+jwt' | 'JWT';
  /** Extra claims for access tokens and introspection. Default `{ email: accountId }`. */
  readonly accessTokenClaims?: (accountId: string) => Record<string, unknown>;
  /** Bind address. Default 127.0.0.1. */
  readonly host?: string;
}

export interface ClientInfo {
  readonly clientId: string;
  /** Client secret (confidential clients). Test-only secret: still never log it. */
  readonly clientSecret?: string;
}

export interface AuthorizationServer {
  readonly issuer: string;
  /** Same as issuer (the base URL). */
  readonly url: string;
  readonly jwksUri: string;
  readonly pop3Audience: string;
  readonly opaqueAudience: string;
  readonly clients: {
    /** Public native client: device flow, authorization code + PKCE, refresh tokens. */
    readonly native: ClientInfo;
    /** Confidential client, client_secret_basic, client credentials. */
    readonly secretBasic: ClientInfo & { readonly clientSecret: string };
    /** Confidential client, private_key_jwt (ES256), client credentials. */
    readonly privateKeyJwt: ClientInfo & {
      readonly privateKey: webcrypto.CryptoKey;
      readonly kid: string;
    };
    /** Resource-server client allowed to introspect any token (client_secret_basic). */
    readonly introspector: ClientInfo & { readonly clientSecret: string };
  };
  /** The oidc-provider instance (tests look tokens up in it; e.g. `provider.RefreshToken.find`). */
  readonly provider: OidcProvider;
  /** Successful grants by grant_type, e.g. `{ refresh_token: 1 }`. */
  grantCounts(): Readonly<Record<string, number>>;
  /** Failed token requests by OAuth error, e.g. `{ invalid_grant: 1 }`. */
  errorCounts(): Readonly<Record<string, number>>;
  /** HTTP requests received for `path` (e.g. `/token/introspection`), whatever their outcome. */
  requestCount(path: string): number;
  /** Public signing keys (PEM) with kid and alg, newest first — for Dovecot's local validation. */
  publicKeys(): readonly { readonly kid: string; readonly alg: string; readonly pem: string }[];
  /** Adds a new signing key (used from now on); the previous one stays published. Returns its kid. */
  rotateKeys(): Promise<string>;
  /** Approves a device user code as `accountId` through the provider's own pages. */
  approveDevice(userCode: string, accountId: string): Promise<void>;
  /** Denies a device user code through the provider's own pages (the client gets access_denied). */
  denyDevice(userCode: string): Promise<void>;
  stop(): Promise<void>;
}

/** The part of oidc-provider's surface used here (it ships no types). */
export interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: GrantModel;
  RefreshToken: { find(value: string): Promise<unknown> };
  AccessToken: { find(value: string): Promise<unknown> };
}

export type ProviderConstructor = new (
  issuer: string,
  configuration: Record<string, unknown>,
) => OidcProvider;

/** The part of Koa's context the secret-ledger middleware reads. */
export interface KoaContext {
  body: unknown;
  response: { get(field: string): string };
}

export interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}

interface GrantModel {
  new (init: { accountId: string; clientId: string }): GrantInstance;
  find(id: string): Promise<GrantInstance | undefined>;
}
