import type { NextFunction, Request, Response } from 'express';
import { isAppError } from '../errors';

interface ErrorBody {
  error: { code: string; message: string };
}

interface BodyParserError extends Error {
  type: string;
  status?: number;
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return err instanceof Error && typeof (err as Partial<BodyParserError>).type === 'string';
}

/** Maps AppErrors to their status, JSON parse errors to 400, anything else to 500. */
export function errorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  let status = 500;
  let body: ErrorBody = { error: { code: 'internal_error', message: 'internal server error' } };

  if (isAppError(err)) {
    status = err.status;
    body = { error: { code: err.code, message: err.message } };
  } else if (isBodyParserError(err) && err.type === 'entity.parse.failed') {
    status = 400;
    body = { error: { code: 'invalid_json', message: 'request body is not valid JSON' } };
  } else if (isBodyParserError(err) && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    status = err.status;
    body = { error: { code: err.type, message: err.message } };
  } else if (process.env.NODE_ENV !== 'test') {
    console.error(`unhandled error on ${req.method} ${req.originalUrl}:`, err);
  }
  res.status(status).json(body);
}
