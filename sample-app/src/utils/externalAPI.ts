import { simulateLatency } from './latency';

export interface ChargeRequest {
  amount: number;
  currency: string;
  token: string;
  description?: string;
}

export interface ChargeResult {
  id: string;
  status: 'succeeded' | 'declined';
  amount: number;
  currency: string;
  declineReason?: string;
}

export interface RefundResult {
  id: string;
  chargeId: string;
  status: 'refunded';
}

export interface Address {
  line1: string;
  city: string;
  country: string;
}

export interface ShipmentRequest {
  orderRef: string;
  userId: string;
  items: Array<{ productId: string; quantity: number }>;
  address?: Address;
}

export interface Shipment {
  trackingNumber: string;
  carrier: string;
  status: 'label_created' | 'in_transit' | 'delivered';
  estimatedDays: number;
}

function pad(n: number): string {
  return String(n).padStart(6, '0');
}

/** Simulated payment provider client (no real network). */
export class PaymentAPI {
  private readonly baseUrl = 'https://api.payments.example.com';
  private chargeCounter = 0;
  private refundCounter = 0;
  private readonly charges = new Map<string, ChargeResult>();

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    await this.roundTrip('POST', '/v1/charges');
    this.chargeCounter += 1;
    const id = `ch_${pad(this.chargeCounter)}`;
    const declined = request.token === 'tok_declined';
    const result: ChargeResult = {
      id,
      status: declined ? 'declined' : 'succeeded',
      amount: request.amount,
      currency: request.currency,
      ...(declined ? { declineReason: 'card_declined' } : {}),
    };
    this.charges.set(id, result);
    return result;
  }

  async refund(chargeId: string): Promise<RefundResult> {
    await this.roundTrip('POST', `/v1/charges/${encodeURIComponent(chargeId)}/refunds`);
    const charge = this.charges.get(chargeId);
    if (charge === undefined || charge.status !== 'succeeded') {
      throw new Error(`${this.baseUrl}: cannot refund charge ${chargeId}`);
    }
    this.refundCounter += 1;
    return { id: `re_${pad(this.refundCounter)}`, chargeId, status: 'refunded' };
  }

  private async roundTrip(method: string, path: string): Promise<string> {
    await simulateLatency(3);
    return `${method} ${this.baseUrl}${path}`;
  }
}

/** Simulated shipping carrier client (no real network). */
export class ShippingAPI {
  private readonly baseUrl = 'https://api.shipping.example.com';
  private shipmentCounter = 0;
  private readonly shipments = new Map<string, Shipment>();

  async createShipment(request: ShipmentRequest): Promise<Shipment> {
    await this.roundTrip('POST', '/shipments');
    if (request.items.length === 0) {
      throw new Error(`${this.baseUrl}: shipment for ${request.orderRef} has no items`);
    }
    this.shipmentCounter += 1;
    const shipment: Shipment = {
      trackingNumber: `TRK-${pad(this.shipmentCounter)}`,
      carrier: 'ExampleExpress',
      status: 'label_created',
      estimatedDays: 3,
    };
    this.shipments.set(shipment.trackingNumber, shipment);
    return { ...shipment };
  }

  async getTracking(trackingNumber: string): Promise<Shipment | undefined> {
    await this.roundTrip('GET', `/shipments/${encodeURIComponent(trackingNumber)}`);
    const shipment = this.shipments.get(trackingNumber);
    return shipment === undefined ? undefined : { ...shipment };
  }

  private async roundTrip(method: string, path: string): Promise<string> {
    await simulateLatency(3);
    return `${method} ${this.baseUrl}${path}`;
  }
}

export const paymentAPI = new PaymentAPI();
export const shippingAPI = new ShippingAPI();
