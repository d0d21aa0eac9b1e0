/** Domain records stored in the simulated database. */

export interface User {
  id: string;
  name: string;
  email: string;
  createdAt: string;
}

export interface Product {
  id: string;
  name: string;
  description: string;
  category: string;
  price: number;
}

export interface InventoryRecord {
  id: string; // same as the product id
  productId: string;
  available: number;
  reserved: number;
}

export type StockStatus = 'in_stock' | 'low_stock' | 'out_of_stock';

export interface OrderItem {
  productId: string;
  quantity: number;
  unitPrice: number;
}

export type OrderStatus = 'confirmed' | 'cancelled';

export interface Order {
  id: string;
  userId: string;
  items: OrderItem[];
  total: number;
  status: OrderStatus;
  paymentId: string;
  shipmentId: string;
  trackingNumber: string;
  createdAt: string;
}

/** Local record of a carrier shipment; deleted when its order is cancelled. */
export interface ShipmentRecord {
  id: string;
  orderRef: string; // the payment id the shipment was booked against
  userId: string;
  carrier: string;
  trackingNumber: string;
  createdAt: string;
}

export interface OrderTracking {
  orderId: string;
  trackingNumber: string;
  status: string;
}

export interface Row {
  id: string;
}
