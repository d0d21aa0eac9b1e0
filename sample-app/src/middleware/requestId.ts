import type { NextFunction, Request, Response } from 'express';

export const REQUEST_ID_HEADER = 'x-request-id';
const MAX_INCOMING_LENGTH = 128;

let counter = 0;

function nextRequestId(): string {
  counter += 1;
  return `req-${String(counter).padStart(6, '0')}`;
}

/** Reuses a sane incoming x-request-id or assigns a sequential one. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.get(REQUEST_ID_HEADER);
  const id =
    incoming !== undefined && incoming.length > 0 && incoming.length <= MAX_INCOMING_LENGTH && /^[\w.:-]+$/.test(incoming)
      ? incoming
      : nextRequestId();
  res.locals.requestId = id;
  res.setHeader(REQUEST_ID_HEADER, id);
  next();
}
