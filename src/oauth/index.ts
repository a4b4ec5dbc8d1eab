/**
 * `popgate/oauth`: obtain, store, renew and revoke OAuth2 tokens for POP3 accounts.
 *
 * @example
 * ```ts
 * import { resolveAccount, deviceFlow, TokenManager, EncryptedFileTokenStore, KeyFileSource } from 'popgate/oauth';
 * const account = await resolveAccount({ name: 'work', provider: 'microsoft', clientId: '...' });
 * const store = new EncryptedFileTokenStore({ dir, keySource: new KeyFileSource(keyPath) });
 * const manager = new TokenManager({ store });
 * await manager.saveLogin(account, await deviceFlow(account, { onPrompt: console.log }), 'device');
 * const { value } = await manager.getAccessToken(account);
 * ```
 */
export {
  type ClientAuthOptions,
  discover,
  type OAuthAccount,
  type OAuthAccountOptions,
  resolveAccount,
} from './account.ts';
export { type AuthorizationRequestInfo, type BrowserFlowOptions, browserFlow } from './flows/browser.ts';
export { clientCredentialsFlow } from './flows/client-credentials.ts';
export { type DeviceFlowOptions, type DevicePrompt, deviceFlow } from './flows/device.ts';
export { refreshFlow } from './flows/refresh.ts';
export { canRevoke, revokeToken } from './flows/revoke.ts';
export { checkEndpoint, createOAuthFetch, isLoopbackHost, type OAuthHttpOptions } from './http.ts';
export { runNotifyCommand, splitCommand } from './notify.ts';
export { getPreset, PRESETS } from './providers/presets.ts';
export type {
  FlowName,
  ProviderEndpoints,
  ProviderId,
  ProviderPreset,
  SaslMechanismName,
} from './providers/types.ts';
export { type EncryptedFileStoreOptions, EncryptedFileTokenStore } from './stores/encrypted-file.ts';
export { KeyFileSource, type KeySource, PassphraseKeySource, type StoreKey } from './stores/key-source.ts';
export {
  KeyringKeySource,
  type KeyringKeySourceOptions,
  type KeyringModule,
  type KeyringProbe,
} from './stores/keyring-key-source.ts';
export { MemoryTokenStore } from './stores/memory.ts';
export {
  type KeySourceKind,
  type KeySourceSelection,
  type KeySourceSelectionOptions,
  parseKeySourceKind,
  selectKeySource,
} from './stores/select-key-source.ts';
export type { StoredTokens, TokenStore, TokenStoreInfo } from './stores/types.ts';
export {
  type AccessToken,
  defaultSkew,
  type LogoutResult,
  type RetryOptions,
  refreshChannel,
  TokenManager,
  type TokenManagerOptions,
  type TokenStatus,
} from './token-manager.ts';
export { type TokenSet, toTokenSet } from './token-set.ts';
