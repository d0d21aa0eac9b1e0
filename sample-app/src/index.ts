import express from 'express';
import type { AddressInfo } from 'node:net';
import { errorHandler } from './middleware/errorHandler';
import { requestId } from './middleware/requestId';
import { requestLogger } from './middleware/requestLogger';
import ordersRouter from './routes/orders';
import { productsRouter } from './routes/products';
import usersRouter from './routes/users';

const app = express();

app.disable('x-powered-by');
app.use(express.json({ limit: '100kb' }));
app.use(requestId);
app.use(requestLogger);

app.get('/health', (_req, res) => {
  res.json({ status: 'ok' });
});

app.use('/api/users', usersRouter);
app.use('/api/products', productsRouter);
app.use('/api/orders', ordersRouter);

app.use((req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `route ${req.method} ${req.path} not found` } });
});

app.use(errorHandler);

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, () => {
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr !== null ? (addr as AddressInfo).port : port;
  console.log(`listening on http://127.0.0.1:${actualPort}`);
});

function shutdown(signal: NodeJS.Signals): void {
  if (process.env.NODE_ENV !== 'test') {
    console.log(`received ${signal}, shutting down`);
  }
  server.close(() => process.exit(0));
  // Keep-alive sockets can hold close() open; do not wait forever.
  setTimeout(() => process.exit(0), 3000).unref();
}

process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

export { app };
