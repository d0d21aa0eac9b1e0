import { simulateLatency } from './latency';
import type { InventoryRecord, Product, Row, User } from '../models';

type Table = Map<string, Row>;

/** Prefixes for generated ids: users -> u3, orders -> o1, ... */
const ID_PREFIXES: Readonly<Record<string, string>> = {
  users: 'u',
  products: 'p',
  orders: 'o',
  shipments: 's',
};

const SEED_USERS: User[] = [
  { id: 'u1', name: 'Ada Lovelace', email: 'ada@example.com', createdAt: '2024-01-01T00:00:00.000Z' },
  { id: 'u2', name: 'Grace Hopper', email: 'grace@example.com', createdAt: '2024-01-02T00:00:00.000Z' },
];

const SEED_PRODUCTS: Product[] = [
  { id: 'p1', name: 'Mechanical Keyboard', description: 'Tenkeyless, brown switches', category: 'peripherals', price: 89.99 },
  { id: 'p2', name: 'Wireless Mouse', description: 'Ergonomic wireless mouse', category: 'peripherals', price: 24.5 },
  { id: 'p3', name: '4K Monitor', description: '27 inch IPS display', category: 'displays', price: 329 },
  { id: 'p4', name: 'USB-C Hub', description: '7-in-1 hub with HDMI', category: 'accessories', price: 39.95 },
  { id: 'p5', name: 'Laptop Stand', description: 'Aluminium, adjustable', category: 'accessories', price: 45 },
];

const SEED_STOCK: Record<string, number> = { p1: 150, p2: 30, p3: 5, p4: 12, p5: 0 };

function clone<T>(value: T): T {
  return structuredClone(value);
}

/**
 * Simulated database client. Tables are in-memory maps keyed by id; every
 * call awaits a small simulated round trip so the code behaves like real I/O.
 */
export class Database {
  private readonly tables = new Map<string, Table>();
  private readonly counters = new Map<string, number>();

  constructor(seed = true) {
    if (seed) {
      this.seed();
    }
  }

  async query<T>(table: string, predicate?: (row: T) => boolean): Promise<T[]> {
    await simulateLatency();
    const rows = [...this.table(table).values()].map((row) => clone(row) as unknown as T);
    return predicate === undefined ? rows : rows.filter(predicate);
  }

  async findById<T>(table: string, id: string): Promise<T | undefined> {
    await simulateLatency();
    const row = this.table(table).get(id);
    return row === undefined ? undefined : (clone(row) as unknown as T);
  }

  async insert<T>(table: string, row: Omit<T, 'id'> & { id?: string }): Promise<T> {
    await simulateLatency();
    const id = row.id ?? this.nextId(table);
    const rows = this.table(table);
    if (rows.has(id)) {
      throw new Error(`duplicate primary key ${table}.${id}`);
    }
    const stored = { ...clone(row), id } as Row;
    rows.set(id, stored);
    return clone(stored) as unknown as T;
  }

  async update<T>(table: string, id: string, patch: Partial<T>): Promise<T | undefined> {
    await simulateLatency();
    const rows = this.table(table);
    const existing = rows.get(id);
    if (existing === undefined) {
      return undefined;
    }
    const updated = { ...existing, ...clone(patch), id } as Row;
    rows.set(id, updated);
    return clone(updated) as unknown as T;
  }

  async delete(table: string, id: string): Promise<boolean> {
    await simulateLatency();
    return this.table(table).delete(id);
  }

  private table(name: string): Table {
    let rows = this.tables.get(name);
    if (rows === undefined) {
      rows = new Map<string, Row>();
      this.tables.set(name, rows);
    }
    return rows;
  }

  private nextId(table: string): string {
    const prefix = ID_PREFIXES[table] ?? `${table}_`;
    const rows = this.table(table);
    let n = this.counters.get(table) ?? 0;
    let id: string;
    do {
      n += 1;
      id = `${prefix}${n}`;
    } while (rows.has(id));
    this.counters.set(table, n);
    return id;
  }

  private seed(): void {
    const users = this.table('users');
    for (const user of SEED_USERS) {
      users.set(user.id, clone(user));
    }
    const products = this.table('products');
    const inventory = this.table('inventory');
    for (const product of SEED_PRODUCTS) {
      products.set(product.id, clone(product));
      const record: InventoryRecord = {
        id: product.id,
        productId: product.id,
        available: SEED_STOCK[product.id] ?? 0,
        reserved: 0,
      };
      inventory.set(product.id, record);
    }
  }
}

export const db = new Database();
