// HTTP-level tests for the app, started as its package.json says (the entry of
// `scripts.start`, else `main`: dist/index.js here, once built). They only look at
// HTTP behaviour so they keep passing after otelize instruments the source.
// tests/fixtures/js-shop-* (the JavaScript ports) run this very file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const STARTUP_TIMEOUT_MS = 20_000;

// The entry of `node [flags] <entry>` in scripts.start, else main. The flags are not
// passed on: an instrumented ES-module app's `--import ./tracing.js` reaches the child
// through NODE_OPTIONS, which `otelize verify` sets.
function appEntry() {
  const pkg = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8'));
  const words = (pkg.scripts?.start ?? '').trim().split(/\s+/);
  if (words[0] === 'node' && words.length > 1) {
    return words[words.length - 1];
  }
  if (typeof pkg.main === 'string' && pkg.main !== '') {
    return pkg.main;
  }
  throw new Error(`${join(appDir, 'package.json')}: no \`node <entry>\` start script and no main`);
}

let child;
let baseUrl;
let output = '';

function startServer() {
  // Inherit the caller's environment (otelize adds NODE_OPTIONS / OTEL_*).
  const env = { ...process.env, PORT: '0', SIMULATED_LATENCY_MS: '0', NODE_ENV: 'test' };
  delete env.NODE_TEST_CONTEXT;
  child = spawn(process.execPath, [appEntry()], { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server did not report its port within ${STARTUP_TIMEOUT_MS} ms:\n${output}`));
    }, STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal}):\n${output}`));
    });
  });
}

async function request(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(`${baseUrl}${path}`, init);
  const text = await res.text();
  let json;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

const get = (path) => request('GET', path);
const post = (path, body, headers) => request('POST', path, body, headers);

function assertErrorBody(body) {
  assert.equal(typeof body?.error?.code, 'string');
  assert.equal(typeof body?.error?.message, 'string');
}

async function available(productId) {
  const res = await get(`/api/products/${productId}/inventory`);
  assert.equal(res.status, 200);
  return res.body.available;
}

before(async () => {
  baseUrl = await startServer();
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
});

describe('health and routing', () => {
  test('GET /health', async () => {
    const res = await get('/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('unknown route is a JSON 404', async () => {
    const res = await get('/api/nope');
    assert.equal(res.status, 404);
    assertErrorBody(res.body);
  });

  test('x-request-id is echoed or generated', async () => {
    const echoed = await request('GET', '/health', undefined, { 'x-request-id': 'abc-123' });
    assert.equal(echoed.headers.get('x-request-id'), 'abc-123');
    const generated = await get('/health');
    assert.ok(generated.headers.get('x-request-id'));
  });
});

describe('users', () => {
  test('POST /api/users creates a user', async () => {
    const res = await post('/api/users', { name: 'Alan Turing', email: 'alan@example.com' });
    assert.equal(res.status, 201);
    assert.equal(typeof res.body.id, 'string');
    assert.equal(res.body.name, 'Alan Turing');
    assert.equal(res.body.email, 'alan@example.com');
    const fetched = await get(`/api/users/${res.body.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.email, 'alan@example.com');
  });

  test('POST /api/users rejects an invalid body with 400', async () => {
    for (const body of [{ name: 'No Email' }, { name: '', email: 'x@example.com' }, { name: 'X', email: 'not-an-email' }, [], '{broken']) {
      const res = await post('/api/users', body);
      assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
      assertErrorBody(res.body);
    }
  });

  test('POST /api/users with a duplicate email is 409', async () => {
    const res = await post('/api/users', { name: 'Ada Again', email: 'ada@example.com' });
    assert.equal(res.status, 409);
    assertErrorBody(res.body);
  });

  test('GET /api/users/:id', async () => {
    const res = await get('/api/users/u1');
    assert.equal(res.status, 200);
    assert.equal(res.body.id, 'u1');
    assert.equal(typeof res.body.name, 'string');
    assert.equal(typeof res.body.email, 'string');
    const missing = await get('/api/users/u404');
    assert.equal(missing.status, 404);
    assertErrorBody(missing.body);
  });
});

describe('products', () => {
  test('GET /api/products lists the catalogue', async () => {
    const res = await get('/api/products');
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    assert.deepEqual(res.body.map((p) => p.id), ['p1', 'p2', 'p3', 'p4', 'p5']);
  });

  test('GET /api/products?q= searches, same answer when cached', async () => {
    const first = await get('/api/products?q=keyboard');
    assert.equal(first.status, 200);
    assert.ok(Array.isArray(first.body));
    assert.ok(first.body.length >= 1);
    assert.ok(first.body.every((p) => typeof p.id === 'string' && typeof p.price === 'number'));
    const second = await get('/api/products?q=keyboard');
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, first.body);
    const none = await get('/api/products?q=zzz-no-such-thing');
    assert.equal(none.status, 200);
    assert.deepEqual(none.body, []);
  });

  test('GET /api/products/:id', async () => {
    const res = await get('/api/products/p1');
    assert.equal(res.status, 200);
    assert.equal(res.body.id, 'p1');
    assert.equal(typeof res.body.name, 'string');
    assert.equal(typeof res.body.price, 'number');
    const missing = await get('/api/products/p404');
    assert.equal(missing.status, 404);
    assertErrorBody(missing.body);
  });

  test('GET /api/products/:id/inventory', async () => {
    const p1 = await get('/api/products/p1/inventory');
    assert.equal(p1.status, 200);
    assert.equal(p1.body.productId, 'p1');
    assert.ok(p1.body.available >= 100);
    assert.equal(p1.body.status, 'in_stock');
    const p3 = await get('/api/products/p3/inventory');
    assert.equal(p3.body.status, 'low_stock');
    const p5 = await get('/api/products/p5/inventory');
    assert.deepEqual(p5.body, { productId: 'p5', available: 0, status: 'out_of_stock' });
    const missing = await get('/api/products/p404/inventory');
    assert.equal(missing.status, 404);
    assertErrorBody(missing.body);
  });
});

describe('orders', () => {
  const order = (overrides = {}) => ({
    userId: 'u1',
    items: [{ productId: 'p1', quantity: 2 }],
    paymentToken: 'tok_visa',
    ...overrides,
  });

  test('POST /api/orders creates a confirmed order and reserves stock', async () => {
    const before = await available('p1');
    const res = await post('/api/orders', order());
    assert.equal(res.status, 201);
    assert.equal(typeof res.body.id, 'string');
    assert.equal(res.body.status, 'confirmed');
    assert.equal(typeof res.body.total, 'number');
    assert.ok(res.body.total > 0);
    assert.match(res.body.trackingNumber, /^TRK-\d+$/);
    assert.equal(await available('p1'), before - 2);

    const fetched = await get(`/api/orders/${res.body.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.id, res.body.id);
    assert.equal(fetched.body.status, 'confirmed');
    assert.equal(fetched.body.total, res.body.total);
  });

  test('GET /api/orders/:id unknown is 404', async () => {
    const res = await get('/api/orders/o404');
    assert.equal(res.status, 404);
    assertErrorBody(res.body);
  });

  test('POST /api/orders with a bad body is 400', async () => {
    const bad = [
      {},
      order({ userId: 42 }),
      order({ items: [] }),
      order({ items: 'p1' }),
      order({ items: [{ productId: 'p1', quantity: 0 }] }),
      order({ items: [{ productId: 'p1', quantity: 1.5 }] }),
      order({ paymentToken: undefined }),
      '{"userId":',
    ];
    for (const body of bad) {
      const res = await post('/api/orders', body);
      assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
      assertErrorBody(res.body);
    }
  });

  test('POST /api/orders with an unknown user or product is 404', async () => {
    const user = await post('/api/orders', order({ userId: 'u404' }));
    assert.equal(user.status, 404);
    assertErrorBody(user.body);
    const product = await post('/api/orders', order({ items: [{ productId: 'p404', quantity: 1 }] }));
    assert.equal(product.status, 404);
    assertErrorBody(product.body);
  });

  test('POST /api/orders without enough stock is 409 and releases earlier items', async () => {
    const p1Before = await available('p1');
    const res = await post('/api/orders', order({ items: [{ productId: 'p1', quantity: 1 }, { productId: 'p5', quantity: 1 }] }));
    assert.equal(res.status, 409);
    assertErrorBody(res.body);
    assert.equal(await available('p1'), p1Before);
    assert.equal(await available('p5'), 0);
  });

  test('POST /api/orders with a declined payment is 402 and releases stock', async () => {
    const p1Before = await available('p1');
    const p2Before = await available('p2');
    const res = await post('/api/orders', order({
      items: [{ productId: 'p1', quantity: 3 }, { productId: 'p2', quantity: 1 }],
      paymentToken: 'tok_declined',
    }));
    assert.equal(res.status, 402);
    assertErrorBody(res.body);
    assert.equal(await available('p1'), p1Before);
    assert.equal(await available('p2'), p2Before);
  });
});

describe('order lifecycle', () => {
  const placeOrder = async (items = [{ productId: 'p1', quantity: 2 }], userId = 'u1') => {
    const res = await post('/api/orders', { userId, items, paymentToken: 'tok_visa' });
    assert.equal(res.status, 201);
    return res.body;
  };

  test('GET /api/orders?userId= lists the user\'s orders', async () => {
    const created = await placeOrder();
    const res = await get('/api/orders?userId=u1');
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(res.body));
    assert.ok(res.body.every((o) => o.userId === 'u1'));
    const listed = res.body.find((o) => o.id === created.id);
    assert.ok(listed, `order ${created.id} missing from ${JSON.stringify(res.body)}`);
    assert.equal(listed.status, 'confirmed');
    assert.equal(listed.total, created.total);
    assert.equal(listed.trackingNumber, created.trackingNumber);

    const cached = await get('/api/orders?userId=u1');
    assert.equal(cached.status, 200);
    assert.deepEqual(cached.body, res.body);

    const missing = await get('/api/orders');
    assert.equal(missing.status, 400);
    assertErrorBody(missing.body);
    const unknown = await get('/api/orders?userId=u404');
    assert.equal(unknown.status, 404);
    assertErrorBody(unknown.body);
  });

  test('GET /api/orders/:id/tracking', async () => {
    const created = await placeOrder();
    const res = await get(`/api/orders/${created.id}/tracking`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { orderId: created.id, trackingNumber: created.trackingNumber, status: 'label_created' });
    const missing = await get('/api/orders/o404/tracking');
    assert.equal(missing.status, 404);
    assertErrorBody(missing.body);
  });

  test('POST /api/orders/:id/cancel refunds, restores stock, and is 409 on repeat', async () => {
    const p1Before = await available('p1');
    const p2Before = await available('p2');
    const created = await placeOrder([{ productId: 'p1', quantity: 4 }, { productId: 'p2', quantity: 1 }]);
    assert.equal(await available('p1'), p1Before - 4);
    assert.equal(await available('p2'), p2Before - 1);
    await get('/api/orders?userId=u1'); // warm the per-user cache

    const res = await post(`/api/orders/${created.id}/cancel`);
    assert.equal(res.status, 200);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(res.body.total, created.total);
    assert.equal(await available('p1'), p1Before);
    assert.equal(await available('p2'), p2Before);

    const fetched = await get(`/api/orders/${created.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.status, 'cancelled');
    const listed = await get('/api/orders?userId=u1');
    assert.equal(listed.body.find((o) => o.id === created.id)?.status, 'cancelled');
    const tracking = await get(`/api/orders/${created.id}/tracking`);
    assert.equal(tracking.status, 404);
    assertErrorBody(tracking.body);

    const again = await post(`/api/orders/${created.id}/cancel`);
    assert.equal(again.status, 409);
    assertErrorBody(again.body);
    assert.equal(await available('p1'), p1Before);

    const unknown = await post('/api/orders/o404/cancel');
    assert.equal(unknown.status, 404);
    assertErrorBody(unknown.body);
  });

  test('concurrent cancels refund once', async () => {
    const p1Before = await available('p1');
    const created = await placeOrder([{ productId: 'p1', quantity: 1 }], 'u2');
    const results = await Promise.all([1, 2, 3].map(() => post(`/api/orders/${created.id}/cancel`)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409]);
    assert.equal(await available('p1'), p1Before);
  });
});
