import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import { runStoreContract } from '../helpers/store-contract.ts';

runStoreContract('MaildirStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'popgate-store-'));
  return {
    store: new MaildirStore(root),
    reopen: async () => new MaildirStore(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

// The same contract with every read through libuv's thread pool (syncReadMaxBytes 0).
runStoreContract('MaildirStore (thread-pool reads)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'popgate-store-'));
  return {
    store: new MaildirStore(root, { syncReadMaxBytes: 0 }),
    reopen: async () => new MaildirStore(root, { syncReadMaxBytes: 0 }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
