import { Database, db } from '../utils/database';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { InventoryRecord, StockStatus } from '../models';

export const LOW_STOCK_THRESHOLD = 5;

export interface InventoryView {
  productId: string;
  available: number;
  status: StockStatus;
}

export function stockStatus(available: number): StockStatus {
  if (available <= 0) {
    return 'out_of_stock';
  }
  return available <= LOW_STOCK_THRESHOLD ? 'low_stock' : 'in_stock';
}

function assertQuantity(quantity: number): void {
  if (!Number.isInteger(quantity) || quantity <= 0) {
    throw new ValidationError('quantity must be a positive integer');
  }
}

export class InventoryService {
  constructor(private readonly db: Database) {}

  async getInventory(productId: string): Promise<InventoryView> {
    const record = await this.load(productId);
    return { productId, available: record.available, status: stockStatus(record.available) };
  }

  async checkStock(productId: string, quantity: number): Promise<boolean> {
    assertQuantity(quantity);
    const record = await this.load(productId);
    return record.available >= quantity;
  }

  async reserveStock(productId: string, quantity: number): Promise<InventoryRecord> {
    assertQuantity(quantity);
    const record = await this.load(productId);
    if (record.available < quantity) {
      throw new ConflictError(`insufficient stock for product ${productId}`);
    }
    const updated = await this.db.update<InventoryRecord>('inventory', productId, {
      available: record.available - quantity,
      reserved: record.reserved + quantity,
    });
    if (updated === undefined) {
      throw new NotFoundError('inventory for product', productId);
    }
    return updated;
  }

  async releaseStock(productId: string, quantity: number): Promise<InventoryRecord> {
    assertQuantity(quantity);
    const record = await this.load(productId);
    const released = Math.min(quantity, record.reserved);
    const updated = await this.db.update<InventoryRecord>('inventory', productId, {
      available: record.available + released,
      reserved: record.reserved - released,
    });
    if (updated === undefined) {
      throw new NotFoundError('inventory for product', productId);
    }
    return updated;
  }

  private async load(productId: string): Promise<InventoryRecord> {
    const record = await this.db.findById<InventoryRecord>('inventory', productId);
    if (record === undefined) {
      throw new NotFoundError('product', productId);
    }
    return record;
  }
}

export const inventoryService = new InventoryService(db);
