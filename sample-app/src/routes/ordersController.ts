import type { NextFunction, Request, Response } from 'express';
import { orderService } from '../services/orderService';
import type { Order } from '../models';

export function toOrderResponse(order: Order) {
  return {
    id: order.id,
    status: order.status,
    total: order.total,
    trackingNumber: order.trackingNumber,
    userId: order.userId,
    items: order.items,
    createdAt: order.createdAt,
  };
}

/** Member-style handlers, mounted as router.get('/:id', ordersController.getOrder). */
export const ordersController = {
  async getOrder(req: Request<{ id: string }>, res: Response, next: NextFunction): Promise<void> {
    try {
      const order = await orderService.getOrder(req.params.id);
      res.json(toOrderResponse(order));
    } catch (err) {
      next(err);
    }
  },

  async cancelOrder(req: Request<{ id: string }>, res: Response, next: NextFunction): Promise<void> {
    try {
      const order = await orderService.cancelOrder(req.params.id);
      res.json(toOrderResponse(order));
    } catch (err) {
      next(err);
    }
  },

  async getTracking(req: Request<{ id: string }>, res: Response, next: NextFunction): Promise<void> {
    try {
      res.json(await orderService.getTracking(req.params.id));
    } catch (err) {
      next(err);
    }
  },

  async listOrders(req: Request, res: Response, next: NextFunction): Promise<void> {
    try {
      const userId = typeof req.query.userId === 'string' ? req.query.userId : '';
      if (userId.length === 0) {
        res.status(400).json({ error: { code: 'validation_error', message: 'userId query parameter is required' } });
        return;
      }
      const orders = await orderService.listOrdersForUser(userId);
      res.json(orders.map(toOrderResponse));
    } catch (err) {
      next(err);
    }
  },
};
