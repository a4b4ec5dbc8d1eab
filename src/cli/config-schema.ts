/**
 * The one schema of popgate's per-account configuration. The loader validates against it, the
 * CLI derives flags and env vars from it, and docs/configuration.md is generated from it, so the
 * three cannot drift (`npm run docs:config`). It also lists the keys of `popgate serve`'s
 * `[[server.issuers]]` tables. Over 400 lines (architecture.md R1): it is data, one entry per key.
 */

export type SettingType = 'string' | 'integer' | 'boolean' | 'string[]' | 'enum' | 'path';

export interface SettingSpec {
  /** Key in the config file (snake_case), e.g. `client_id`. */
  readonly key: string;
  /** Property on AccountConfig (camelCase), e.g. `clientId`. */
  readonly property: keyof AccountConfig;
  readonly type: SettingType;
  readonly values?: readonly string[];
  readonly description: string;
  /** Human default shown in the docs; the loader applies `defaultValue`. */
  readonly defaultValue?: string | number | boolean;
  /** Settings that concern fetching only (shown in the fetch section of the docs). */
  readonly group: 'identity' | 'oauth' | 'connection' | 'fetch';
}

export type ProviderId = 'microsoft' | 'google' | 'fastmail' | 'zoho' | 'custom';
export type FlowName = 'device' | 'browser' | 'client-credentials';
export type TlsMode = 'implicit' | 'starttls';
export type MechanismName = 'XOAUTH2' | 'OAUTHBEARER';
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** One account, validated and frozen. Secrets are never inline: only paths or commands. */
export interface AccountConfig {
  readonly name: string;
  readonly provider: ProviderId;
  readonly user: string;
  readonly localUser?: string;
  readonly issuer?: string;
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
  readonly deviceEndpoint?: string;
  readonly revocationEndpoint?: string;
  readonly clientId?: string;
  readonly clientSecretFile?: string;
  readonly clientAuth?: ClientAuthMethod;
  readonly privateKeyFile?: string;
  readonly privateKeyKid?: string;
  readonly scopes?: readonly string[];
  readonly flow?: FlowName;
  readonly allowInsecureHttp: boolean;
  readonly ca?: string;
  readonly host?: string;
  readonly port?: number;
  readonly tls?: TlsMode;
  readonly mechanism?: MechanismName;
  readonly notifyCommand?: string;
  readonly to?: string;
  readonly deliverCommand?: string;
  readonly delete: boolean;
  readonly deleteAfterDays?: number;
  readonly maxSize?: number;
  readonly limit?: number;
  readonly tokenCommand?: string;
  readonly tokenFile?: string;
}

export const ACCOUNT_SETTINGS: readonly SettingSpec[] = [
  {
    key: 'user',
    property: 'user',
    type: 'string',
    group: 'identity',
    description: 'mailbox login name (usually the email address); the SASL user',
  },
  {
    key: 'local_user',
    property: 'localUser',
    type: 'string',
    group: 'identity',
    description:
      'login name legacy clients use at `popgate proxy` for this account (default: `user`); see docs/proxy.md',
  },
  {
    key: 'provider',
    property: 'provider',
    type: 'enum',
    values: ['microsoft', 'google', 'fastmail', 'zoho', 'custom'],
    group: 'identity',
    defaultValue: 'custom',
    description:
      'provider preset (endpoints, minimal scopes, flows, SASL mechanism, POP3 host); `custom` uses `issuer` discovery or explicit endpoints',
  },
  {
    key: 'issuer',
    property: 'issuer',
    type: 'string',
    group: 'oauth',
    description: 'authorization server issuer URL for discovery (RFC 8414 / OpenID Connect)',
  },
  {
    key: 'authorization_endpoint',
    property: 'authorizationEndpoint',
    type: 'string',
    group: 'oauth',
    description: 'explicit authorization endpoint (instead of discovery)',
  },
  {
    key: 'token_endpoint',
    property: 'tokenEndpoint',
    type: 'string',
    group: 'oauth',
    description: 'explicit token endpoint (instead of discovery)',
  },
  {
    key: 'device_authorization_endpoint',
    property: 'deviceEndpoint',
    type: 'string',
    group: 'oauth',
    description: 'explicit device authorization endpoint (RFC 8628)',
  },
  {
    key: 'revocation_endpoint',
    property: 'revocationEndpoint',
    type: 'string',
    group: 'oauth',
    description: 'explicit revocation endpoint (RFC 7009), used by logout',
  },
  {
    key: 'client_id',
    property: 'clientId',
    type: 'string',
    group: 'oauth',
    description: 'OAuth client id of your app registration',
  },
  {
    key: 'client_secret_file',
    property: 'clientSecretFile',
    type: 'path',
    group: 'oauth',
    description:
      'file (mode 0600) holding the client secret, for confidential clients and client credentials',
  },
  {
    key: 'client_auth',
    property: 'clientAuth',
    type: 'enum',
    values: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    group: 'oauth',
    description:
      'how a confidential client authenticates at the token endpoint (RFC 6749 §2.3.1, RFC 7523 §2.2); defaults to `client_secret_basic` with `client_secret_file`, `private_key_jwt` with `private_key_file`, else none (a public client)',
  },
  {
    key: 'private_key_file',
    property: 'privateKeyFile',
    type: 'path',
    group: 'oauth',
    description:
      'unencrypted PEM private key (mode 0600; EC P-256/384/521, RSA ≥ 2048 bits or Ed25519) that signs `private_key_jwt` client assertions',
  },
  {
    key: 'private_key_kid',
    property: 'privateKeyKid',
    type: 'string',
    group: 'oauth',
    description: '`kid` header of the `private_key_jwt` client assertions, when the provider asks for one',
  },
  {
    key: 'scopes',
    property: 'scopes',
    type: 'string[]',
    group: 'oauth',
    description: "scopes to request; defaults to the preset's minimal POP3 scope plus offline access",
  },
  {
    key: 'flow',
    property: 'flow',
    type: 'enum',
    values: ['device', 'browser', 'client-credentials'],
    group: 'oauth',
    description: "how `popgate login` obtains tokens; defaults to the preset's preferred flow",
  },
  {
    key: 'allow_insecure_http',
    property: 'allowInsecureHttp',
    type: 'boolean',
    group: 'oauth',
    defaultValue: false,
    description: 'allow http:// OAuth endpoints on a loopback host (tests and local development only)',
  },
  {
    key: 'ca',
    property: 'ca',
    type: 'path',
    group: 'connection',
    description: 'extra CA certificate (PEM) trusted for the POP3 server and the authorization server',
  },
  {
    key: 'host',
    property: 'host',
    type: 'string',
    group: 'connection',
    description: "POP3 server host; defaults to the preset's",
  },
  {
    key: 'port',
    property: 'port',
    type: 'integer',
    group: 'connection',
    description: 'POP3 server port; defaults to 995 for implicit TLS, 110 for STLS',
  },
  {
    key: 'tls',
    property: 'tls',
    type: 'enum',
    values: ['implicit', 'starttls'],
    group: 'connection',
    defaultValue: 'implicit',
    description: 'implicit TLS (pop3s) or STLS upgrade; certificates are always verified',
  },
  {
    key: 'mechanism',
    property: 'mechanism',
    type: 'enum',
    values: ['XOAUTH2', 'OAUTHBEARER'],
    group: 'connection',
    description: "SASL mechanism; defaults to the preset's, else the best the server offers",
  },
  {
    key: 'notify_command',
    property: 'notifyCommand',
    type: 'string',
    group: 'oauth',
    description:
      'command run (no shell) when the account needs a new login, with the account name as argument',
  },
  {
    key: 'to',
    property: 'to',
    type: 'string',
    group: 'fetch',
    description: 'destination: `maildir:DIR` or `mbox:FILE` (default maildir under ~/Maildir)',
  },
  {
    key: 'deliver_command',
    property: 'deliverCommand',
    type: 'string',
    group: 'fetch',
    description:
      'deliver each message to this command on stdin (procmail, dovecot-lda, sendmail -i); success only on exit 0',
  },
  {
    key: 'delete',
    property: 'delete',
    type: 'boolean',
    group: 'fetch',
    defaultValue: false,
    description: 'delete messages on the server once delivered and recorded (default: leave on server)',
  },
  {
    key: 'delete_after_days',
    property: 'deleteAfterDays',
    type: 'integer',
    group: 'fetch',
    description: 'delete delivered messages from the server this many days after first fetching them',
  },
  {
    key: 'max_size',
    property: 'maxSize',
    type: 'integer',
    group: 'fetch',
    description: 'skip (and report) messages larger than this many octets',
  },
  {
    key: 'limit',
    property: 'limit',
    type: 'integer',
    group: 'fetch',
    description: 'fetch at most this many messages per run',
  },
  {
    key: 'token_command',
    property: 'tokenCommand',
    type: 'string',
    group: 'fetch',
    description: "command that prints an access token (instead of popgate's token manager)",
  },
  {
    key: 'token_file',
    property: 'tokenFile',
    type: 'path',
    group: 'fetch',
    description: 'file (mode 0600) holding an access token kept fresh by another tool',
  },
];

/** One key of a `[[server.issuers]]` table of `popgate serve` (the token validator's issuer). */
export interface ServerIssuerSettingSpec {
  /** Key in the table (snake_case); `popgate serve` turns it into the validator's camelCase option. */
  readonly key: string;
  readonly type: SettingType | 'table';
  readonly values?: readonly string[];
  readonly description: string;
  /** Human default shown in the docs (the validator applies it). */
  readonly defaultValue?: string | number | boolean;
  /** The `popgate serve` flag of the single-issuer form, when there is one. */
  readonly flag?: string;
}

/**
 * The keys of `[[server.issuers]]`; `popgate serve` refuses any other, and docs/configuration.md
 * lists them. docs/server-auth.md explains each.
 */
export const SERVER_ISSUER_SETTINGS: readonly ServerIssuerSettingSpec[] = [
  {
    key: 'issuer',
    type: 'string',
    flag: '--issuer',
    description: 'the exact `iss` of the trusted issuer (https)',
  },
  {
    key: 'audience',
    type: 'string[]',
    flag: '--audience',
    description:
      'audience(s) this server accepts; one must be in `aud` (required unless `require_audience = false`)',
  },
  {
    key: 'require_audience',
    type: 'boolean',
    defaultValue: true,
    description: '`false` only for identity providers that cannot put an audience in tokens',
  },
  {
    key: 'method',
    type: 'enum',
    values: ['jwt', 'introspection'],
    defaultValue: 'jwt',
    description: 'verify JWTs locally with the JWKS, or introspect every token (RFC 7662)',
  },
  {
    key: 'user_claim',
    type: 'enum',
    values: ['email', 'preferred_username', 'upn', 'sub', 'username'],
    defaultValue: 'email',
    flag: '--user-claim',
    description: 'claim holding the login name; `sub` keeps its case, the others are lower-cased',
  },
  {
    key: 'domains',
    type: 'string[]',
    description:
      'mail domains this issuer may name: a login with `@` must be in one, one without gets the first appended (`alice` → `alice@DOMAIN`); required and disjoint with several issuers',
  },
  {
    key: 'email_verified',
    type: 'enum',
    values: ['required', 'if-present', 'ignore'],
    description:
      'whether an `email` login needs `email_verified: true`; default `required` with several issuers, `if-present` (refused only when present and not true) with one',
  },
  {
    key: 'token_prefixes',
    type: 'string[]',
    description:
      "opaque tokens starting with one of these are this issuer's (introspection routing); must not overlap",
  },
  {
    key: 'ca',
    type: 'path',
    flag: '--issuer-ca',
    description:
      "CA certificate(s), PEM, trusted instead of the public roots for this issuer's discovery, JWKS and introspection (a private CA)",
  },
  {
    key: 'jwks',
    type: 'string',
    flag: '--jwks',
    description:
      "the issuer's JWKS: a file (reread when a new `kid` appears) or an https URL; default from discovery",
  },
  { key: 'jwks_url', type: 'string', description: 'the JWKS as an https URL (`jwks` spelled out)' },
  { key: 'jwks_file', type: 'path', description: 'the JWKS as an absolute file path (`jwks` spelled out)' },
  {
    key: 'discovery_url',
    type: 'string',
    description: "metadata URL; default OIDC's well-known URL, then RFC 8414's",
  },
  {
    key: 'openid_configuration',
    type: 'string',
    description: 'URL sent in RFC 7628 error challenges; default `<issuer>/.well-known/openid-configuration`',
  },
  {
    key: 'typ',
    type: 'string[]',
    defaultValue: 'at+jwt',
    description: 'accepted JWT `typ` headers (`application/` prefix and case ignored)',
  },
  {
    key: 'allow_missing_typ',
    type: 'boolean',
    defaultValue: false,
    flag: '--allow-missing-typ',
    description: 'accept JWTs without a `typ` header',
  },
  {
    key: 'algorithms',
    type: 'string[]',
    description: 'accepted signature algorithms; default every asymmetric one',
  },
  {
    key: 'scopes',
    type: 'table',
    description:
      '`{ read = "pop3", delete = "pop3.delete" }`: any one listed grants the right; default read `pop3`, delete = read',
  },
  { key: 'clock_tolerance_seconds', type: 'integer', description: 'leeway on `exp`/`nbf` for this issuer' },
  {
    key: 'introspection',
    type: 'table',
    description:
      '`{ client_id, client_secret_file, client_auth?, endpoint? }`: the introspection client; required for `method = "introspection"`',
  },
];

/** Top-level keys of the config file besides `[accounts.NAME]` tables. */
export const TOP_LEVEL_KEYS = ['accounts', 'server', 'proxy'] as const;

/** One key of the `[proxy]` table (`popgate proxy`, docs/proxy.md). */
export interface ProxySettingSpec {
  readonly key: string;
  readonly type: SettingType;
  readonly values?: readonly string[];
  readonly description: string;
  readonly defaultValue?: string | number | boolean | readonly string[];
}

/** The `[proxy]` table; `popgate proxy` validates it against this list and docs are generated from it. */
export const PROXY_SETTINGS: readonly ProxySettingSpec[] = [
  {
    key: 'listen',
    type: 'string[]',
    defaultValue: ['pop3://127.0.0.1:1110'],
    description:
      'local listeners: `pop3://HOST:PORT` (plaintext, STLS offered when there is TLS) or `pop3s://HOST:PORT` (implicit TLS); a non-loopback HOST needs local TLS',
  },
  {
    key: 'accounts',
    type: 'string[]',
    description: 'the accounts this proxy serves (default: every configured account)',
  },
  {
    key: 'tls_cert',
    type: 'path',
    description: 'local TLS certificate chain (PEM) for STLS and pop3s; reloaded on SIGHUP',
  },
  { key: 'tls_key', type: 'path', description: 'local TLS private key (PEM)' },
  {
    key: 'self_signed',
    type: 'boolean',
    defaultValue: true,
    description:
      'without `tls_cert`: create (once) and use a self-signed certificate in the data directory, printing its path and SHA-256 fingerprint',
  },
  {
    key: 'plaintext_loopback',
    type: 'boolean',
    defaultValue: true,
    description:
      'accept USER/PASS and AUTH PLAIN without TLS when both the listener and the client are on loopback',
  },
  {
    key: 'max_connections',
    type: 'integer',
    defaultValue: 500,
    description: 'local connections open at once, in total',
  },
  {
    key: 'max_connections_per_ip',
    type: 'integer',
    defaultValue: 50,
    description: 'local connections open at once from one client address',
  },
  {
    key: 'max_connections_per_account',
    type: 'integer',
    defaultValue: 4,
    description:
      'upstream sessions open at once per account (Microsoft allows few concurrent POP sessions per mailbox); more get `-ERR [IN-USE]`',
  },
  {
    key: 'max_failed_logins',
    type: 'integer',
    defaultValue: 3,
    description: 'wrong passwords in one session before it is closed',
  },
  {
    key: 'failed_login_delay_ms',
    type: 'integer',
    defaultValue: 1000,
    description:
      'delay before answering a wrong password; it doubles with each recent failure from the same address or for the same account, up to 15 s',
  },
  {
    key: 'idle_timeout_seconds',
    type: 'integer',
    defaultValue: 600,
    description: 'a local session idle this long is closed (RFC 1939: at least 600)',
  },
  {
    key: 'metrics',
    type: 'string',
    description: 'serve Prometheus `/metrics` and `/healthz` on HOST:PORT (keep it on 127.0.0.1)',
  },
  {
    key: 'shutdown_grace_seconds',
    type: 'integer',
    defaultValue: 30,
    description: 'on SIGTERM, how long sessions may finish before they are ended',
  },
  {
    key: 'log_level',
    type: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    defaultValue: 'info',
    description: 'pino log level',
  },
];
