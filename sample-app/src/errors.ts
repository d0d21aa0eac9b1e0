/**
 * Typed application errors. Each carries an HTTP status and a stable,
 * machine-readable code that the error handler puts in the response body.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(message: string, status = 500, code = 'internal_error') {
    super(message);
    this.name = 'AppError';
    this.status = status;
    this.code = code;
  }
}

export class ValidationError extends AppError {
  constructor(message: string) {
    super(message, 400, 'validation_error');
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  constructor(resource: string, id?: string) {
    super(id === undefined ? `${resource} not found` : `${resource} ${id} not found`, 404, 'not_found');
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends AppError {
  constructor(message: string) {
    super(message, 409, 'conflict');
    this.name = 'ConflictError';
  }
}

export class PaymentDeclinedError extends AppError {
  constructor(message = 'payment declined') {
    super(message, 402, 'payment_declined');
    this.name = 'PaymentDeclinedError';
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
