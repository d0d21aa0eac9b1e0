import { Router } from 'express';
import { orderService } from '../services/orderService';
import { ordersController, toOrderResponse } from './ordersController';

const router = Router();

router
  .route('/')
  .post(async (req, res, next) => {
    try {
      const order = await orderService.createOrder(req.body);
      res.status(201).location(`${req.baseUrl}/${order.id}`).json(toOrderResponse(order));
    } catch (err) {
      next(err);
    }
  })
  .get(ordersController.listOrders);

router.get('/:id', ordersController.getOrder);
router.get('/:id/tracking', ordersController.getTracking);
router.post('/:id/cancel', ordersController.cancelOrder);

export default router;
