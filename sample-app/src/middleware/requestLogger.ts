import type { NextFunction, Request, Response } from 'express';

function loggingEnabled(): boolean {
  return process.env.LOG_LEVEL !== 'silent' && process.env.NODE_ENV !== 'test';
}

/** Logs one line per request when the response finishes. */
export function requestLogger(req: Request, res: Response, next: NextFunction): void {
  if (!loggingEnabled()) {
    next();
    return;
  }
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const id = typeof res.locals.requestId === 'string' ? res.locals.requestId : '-';
    console.log(`${req.method} ${req.originalUrl} ${res.statusCode} ${durationMs.toFixed(1)}ms [${id}]`);
  });
  next();
}
