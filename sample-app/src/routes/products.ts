import { Router } from 'express';
import { asyncHandler } from '../middleware/asyncHandler';
import { inventoryService } from '../services/inventoryService';
import { productService } from '../services/productService';

export const productsRouter = Router();

productsRouter.get(
  '/',
  asyncHandler(async (req, res) => {
    const q = req.query.q;
    const term = typeof q === 'string' ? q.trim() : '';
    const products = term.length > 0 ? await productService.searchProducts(term) : await productService.listProducts();
    res.json(products);
  }),
);

productsRouter.get(
  '/:id',
  asyncHandler<{ id: string }>(async (req, res) => {
    const product = await productService.getProduct(req.params.id);
    res.json(product);
  }),
);

productsRouter.get('/:id/inventory', async (req, res, next) => {
  try {
    const inventory = await inventoryService.getInventory(req.params.id);
    res.json(inventory);
  } catch (err) {
    next(err);
  }
});
