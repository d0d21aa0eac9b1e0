import { PaymentDeclinedError, ValidationError } from '../errors';
import { ChargeResult, PaymentAPI, RefundResult, paymentAPI } from '../utils/externalAPI';

export interface ChargeInput {
  amount: number;
  token: string;
  currency?: string;
  description?: string;
}

export class PaymentService {
  constructor(private readonly payments: PaymentAPI) {}

  /** Charges the token; throws PaymentDeclinedError when the provider declines. */
  async charge(input: ChargeInput): Promise<ChargeResult> {
    if (!(input.amount > 0)) {
      throw new ValidationError('charge amount must be positive');
    }
    const result = await this.payments.charge({
      amount: Math.round(input.amount * 100) / 100,
      currency: input.currency ?? 'USD',
      token: input.token,
      description: input.description,
    });
    if (result.status !== 'succeeded') {
      throw new PaymentDeclinedError(`payment declined: ${result.declineReason ?? 'unknown reason'}`);
    }
    return result;
  }

  async refund(chargeId: string): Promise<RefundResult> {
    return this.payments.refund(chargeId);
  }
}

export const paymentService = new PaymentService(paymentAPI);
