import { Cache, cache } from '../utils/cache';
import { Database, db } from '../utils/database';
import { ShippingAPI, shippingAPI } from '../utils/externalAPI';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { Order, OrderItem, OrderTracking, ShipmentRecord } from '../models';
import { InventoryService, inventoryService } from './inventoryService';
import { PaymentService, paymentService } from './paymentService';
import { ProductService, productService } from './productService';
import { UserService, userService } from './userService';

export interface OrderLineInput {
  productId: string;
  quantity: number;
}

export interface CreateOrderInput {
  userId: string;
  items: OrderLineInput[];
  paymentToken: string;
}

const MAX_ITEMS = 50;
const MAX_QUANTITY = 1000;
const USER_ORDERS_TTL_SECONDS = 120;

function userOrdersKey(userId: string): string {
  return `orders:user:${userId}`;
}

function roundMoney(amount: number): number {
  return Math.round(amount * 100) / 100;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim().length > 0;
}

/** Validates the request shape and merges duplicate product lines. */
export function parseCreateOrderInput(body: unknown): CreateOrderInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('request body must be a JSON object');
  }
  const { userId, items, paymentToken } = body as Record<string, unknown>;
  if (!isNonEmptyString(userId)) {
    throw new ValidationError('userId must be a non-empty string');
  }
  if (!isNonEmptyString(paymentToken)) {
    throw new ValidationError('paymentToken must be a non-empty string');
  }
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_ITEMS) {
    throw new ValidationError(`items must be an array of 1 to ${MAX_ITEMS} entries`);
  }
  const merged = new Map<string, number>();
  items.forEach((item: unknown, index: number) => {
    if (typeof item !== 'object' || item === null) {
      throw new ValidationError(`items[${index}] must be an object`);
    }
    const { productId, quantity } = item as Record<string, unknown>;
    if (!isNonEmptyString(productId)) {
      throw new ValidationError(`items[${index}].productId must be a non-empty string`);
    }
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0 || quantity > MAX_QUANTITY) {
      throw new ValidationError(`items[${index}].quantity must be an integer between 1 and ${MAX_QUANTITY}`);
    }
    merged.set(productId, (merged.get(productId) ?? 0) + quantity);
  });
  return {
    userId,
    paymentToken,
    items: [...merged].map(([productId, quantity]) => ({ productId, quantity })),
  };
}

export class OrderService {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
    private readonly users: UserService,
    private readonly products: ProductService,
    private readonly inventory: InventoryService,
    private readonly payments: PaymentService,
    private readonly shipping: ShippingAPI,
  ) {}

  /** Ids of orders whose cancellation is in flight (guards against double refunds). */
  private readonly cancelling = new Set<string>();

  /**
   * Validates, reserves stock, charges, ships and persists an order. Any
   * failure after a reservation releases every reserved item before the
   * error propagates; a failure after the charge also refunds it.
   */
  async createOrder(input: unknown): Promise<Order> {
    const request = parseCreateOrderInput(input);
    const user = await this.users.getUser(request.userId);

    const reserved: OrderLineInput[] = [];
    try {
      const lines: OrderItem[] = [];
      for (const item of request.items) {
        const product = await this.products.getProduct(item.productId);
        await this.checkAvailability(product.id, item.quantity);
        await this.inventory.reserveStock(product.id, item.quantity);
        reserved.push(item);
        lines.push({ productId: product.id, quantity: item.quantity, unitPrice: product.price });
      }

      const total = roundMoney(lines.reduce((sum, line) => sum + line.unitPrice * line.quantity, 0));
      const charge = await this.payments.charge({
        amount: total,
        token: request.paymentToken,
        description: `order for ${user.id}`,
      });

      let order: Order;
      let shipmentId: string | undefined;
      try {
        const shipment = await this.shipping.createShipment({
          orderRef: charge.id,
          userId: user.id,
          items: lines.map(({ productId, quantity }) => ({ productId, quantity })),
        });
        const createdAt = new Date().toISOString();
        const record = await this.db.insert<ShipmentRecord>('shipments', {
          orderRef: charge.id,
          userId: user.id,
          carrier: shipment.carrier,
          trackingNumber: shipment.trackingNumber,
          createdAt,
        });
        shipmentId = record.id;
        order = await this.db.insert<Order>('orders', {
          userId: user.id,
          items: lines,
          total,
          status: 'confirmed',
          paymentId: charge.id,
          shipmentId: record.id,
          trackingNumber: shipment.trackingNumber,
          createdAt,
        });
      } catch (err) {
        if (shipmentId !== undefined) {
          await this.db.delete('shipments', shipmentId);
        }
        await this.payments.refund(charge.id);
        throw err;
      }

      await this.invalidateCaches(user.id);
      return order;
    } catch (err) {
      await this.releaseReservations(reserved);
      throw err;
    }
  }

  async getOrder(id: string): Promise<Order> {
    const order = await this.db.findById<Order>('orders', id);
    if (order === undefined) {
      throw new NotFoundError('order', id);
    }
    return order;
  }

  async listOrdersForUser(userId: string): Promise<Order[]> {
    const key = userOrdersKey(userId);
    const cached = await this.cache.get<Order[]>(key);
    if (cached !== undefined) {
      return cached;
    }
    await this.users.getUser(userId);
    const orders = await this.db.query<Order>('orders', (order) => order.userId === userId);
    await this.cache.set(key, orders, USER_ORDERS_TTL_SECONDS);
    return orders;
  }

  /**
   * Cancels a confirmed order: refunds the charge, releases the stock of
   * every item, deletes the shipment record and marks the order cancelled.
   * A second cancellation (or one racing an in-flight cancel) is a conflict.
   */
  async cancelOrder(id: string): Promise<Order> {
    if (this.cancelling.has(id)) {
      throw new ConflictError(`order ${id} is already being cancelled`);
    }
    this.cancelling.add(id);
    try {
      const order = await this.getOrder(id);
      if (order.status === 'cancelled') {
        throw new ConflictError(`order ${id} is already cancelled`);
      }
      await this.payments.refund(order.paymentId);
      await this.releaseReservations(order.items);
      await this.db.delete('shipments', order.shipmentId);
      const cancelled = await this.db.update<Order>('orders', id, { status: 'cancelled' });
      if (cancelled === undefined) {
        throw new NotFoundError('order', id);
      }
      await this.invalidateCaches(order.userId);
      return cancelled;
    } finally {
      this.cancelling.delete(id);
    }
  }

  /** Current carrier status of the order's shipment; 404 once the order is cancelled. */
  async getTracking(id: string): Promise<OrderTracking> {
    const order = await this.getOrder(id);
    const record = await this.db.findById<ShipmentRecord>('shipments', order.shipmentId);
    if (record === undefined) {
      throw new NotFoundError('shipment for order', id);
    }
    const shipment = await this.shipping.getTracking(record.trackingNumber);
    if (shipment === undefined) {
      throw new NotFoundError('shipment for order', id);
    }
    return { orderId: order.id, trackingNumber: shipment.trackingNumber, status: shipment.status };
  }

  private async checkAvailability(productId: string, quantity: number): Promise<void> {
    const enough = await this.inventory.checkStock(productId, quantity);
    if (!enough) {
      throw new ConflictError(`insufficient stock for product ${productId}`);
    }
  }

  private async releaseReservations(reserved: OrderLineInput[]): Promise<void> {
    for (const item of reserved) {
      await this.inventory.releaseStock(item.productId, item.quantity);
    }
  }

  private async invalidateCaches(userId: string): Promise<void> {
    await this.cache.del(userOrdersKey(userId));
    await this.products.invalidateSearchCache();
  }
}

export const orderService = new OrderService(
  db,
  cache,
  userService,
  productService,
  inventoryService,
  paymentService,
  shippingAPI,
);
