interface StoredPayload {
  payload: Record<string, unknown>;
  expiresAt: number | undefined;
}

/**
 * oidc-provider's storage adapter over plain Maps, shared by the provider instances one server
 * builds (key rotation builds a new instance): unbounded unlike the default LRU of 1,000 entries,
 * which evicts tokens under load tests.
 */
export function memoryAdapterFactory(): new (name: string) => unknown {
  const store = new Map<string, StoredPayload>();
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  const byGrant = new Map<string, Set<string>>();
  const live = (key: string): Record<string, unknown> | undefined => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MemoryAdapter {
    readonly name: string;
    constructor(name: string) {
      this.name = name;
    }
    key(id: string): string {
      return `${this.name}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      store.set(key, {
        payload: { ...payload },
        expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
      });
      if (typeof payload.uid === 'string') byUid.set(payload.uid, id);
      if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id);
      if (typeof payload.grantId === 'string') {
        const set = byGrant.get(payload.grantId) ?? new Set<string>();
        set.add(key);
        byGrant.set(payload.grantId, set);
      }
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(this.key(id));
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const id = byUid.get(uid);
      return id === undefined ? undefined : live(this.key(id));
    }
    async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
      const id = byUserCode.get(userCode);
      return id === undefined ? undefined : live(this.key(id));
    }
    async consume(id: string): Promise<void> {
      const entry = live(this.key(id));
      if (entry) entry.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of byGrant.get(grantId) ?? []) store.delete(key);
      byGrant.delete(grantId);
    }
  };
}
