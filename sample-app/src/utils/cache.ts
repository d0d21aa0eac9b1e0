import { simulateLatency } from './latency';

interface CacheEntry {
  value: unknown;
  expiresAt: number | undefined; // epoch ms; undefined = no expiry
}

/**
 * Simulated Redis-like cache with per-key TTLs. Values are cloned on the way
 * in and out, like a real network cache that serializes them.
 */
export class Cache {
  private readonly entries = new Map<string, CacheEntry>();

  constructor(private readonly now: () => number = Date.now) {}

  async get<T>(key: string): Promise<T | undefined> {
    await simulateLatency(0.5);
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return undefined;
    }
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return structuredClone(entry.value) as T;
  }

  async set<T>(key: string, value: T, ttlSeconds?: number): Promise<void> {
    await simulateLatency(0.5);
    const expiresAt = ttlSeconds !== undefined && ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : undefined;
    this.entries.set(key, { value: structuredClone(value), expiresAt });
  }

  async del(key: string): Promise<boolean> {
    await simulateLatency(0.5);
    return this.entries.delete(key);
  }

  /** Deletes every key starting with `prefix`; returns how many were removed. */
  async delByPrefix(prefix: string): Promise<number> {
    await simulateLatency(0.5);
    let removed = 0;
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(prefix)) {
        this.entries.delete(key);
        removed += 1;
      }
    }
    return removed;
  }
}

export const cache = new Cache();
