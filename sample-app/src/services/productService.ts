import { Cache, cache } from '../utils/cache';
import { Database, db } from '../utils/database';
import { NotFoundError, ValidationError } from '../errors';
import type { Product } from '../models';

const SEARCH_CACHE_PREFIX = 'products:search:';
const SEARCH_CACHE_TTL_SECONDS = 60;
const PRODUCT_CACHE_TTL_SECONDS = 300;

function normalizeTerm(term: string): string {
  return term.trim().toLowerCase().replace(/\s+/g, ' ');
}

export class ProductService {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
  ) {}

  async getProduct(id: string): Promise<Product> {
    const key = `product:${id}`;
    const cached = await this.cache.get<Product>(key);
    if (cached !== undefined) {
      return cached;
    }
    const product = await this.db.findById<Product>('products', id);
    if (product === undefined) {
      throw new NotFoundError('product', id);
    }
    await this.cache.set(key, product, PRODUCT_CACHE_TTL_SECONDS);
    return product;
  }

  /**
   * Case-insensitive search over name, description and category with a
   * cache read-through: cache.get, then the db query, then cache.set.
   */
  async searchProducts(term: string): Promise<Product[]> {
    const normalized = normalizeTerm(term);
    if (normalized.length === 0) {
      throw new ValidationError('search term must not be empty');
    }
    const key = `${SEARCH_CACHE_PREFIX}${normalized}`;
    const cached = await this.cache.get<Product[]>(key);
    if (cached !== undefined) {
      return cached;
    }
    const results = await this.db.query<Product>('products', (product) =>
      [product.name, product.description, product.category].some((field) =>
        field.toLowerCase().includes(normalized),
      ),
    );
    results.sort((a, b) => a.id.localeCompare(b.id));
    await this.cache.set(key, results, SEARCH_CACHE_TTL_SECONDS);
    return results;
  }

  async listProducts(): Promise<Product[]> {
    const products = await this.db.query<Product>('products');
    return products.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Drops every cached search result (e.g. after stock changed). */
  async invalidateSearchCache(): Promise<number> {
    return this.cache.delByPrefix(SEARCH_CACHE_PREFIX);
  }
}

export const productService = new ProductService(db, cache);
