// popgate/store: maildrop stores for the POP3 server.
export { CrlfEncoder, crlfLength, LfNormalizer, toCrlf, toLf } from './crlf.ts';
export { type DovecotUidlist, dovecotUidl, parseDovecotUidlist } from './dovecot-uidlist.ts';
export {
  MaildirStore,
  type MaildirStoreOptions,
  SESSION_LOCK_FILE,
  STATE_LOCK_FILE,
} from './maildir-store.ts';
export { parseStoreSpec, type StoreSpec } from './spec.ts';
export type { CommitResult, MaildropMessage, MaildropSession, MaildropStore } from './types.ts';
export { formatUidl, UIDLIST_FILE } from './uidlist.ts';
export { normalizeUser } from './user.ts';
