// Load driver for tests/bench/bench_runtime.py.
//
//   node driver.mjs '{"url": "http://127.0.0.1:PORT", "duration": 10, "connections": 10, "warmup": 2}'
//
// With "handshake": true it prints {"phase": "warm"} after the warm-up and waits
// for a line on stdin before the measured run.
//
// Runs autocannon's programmatic API twice against the same URL: a warm-up of
// `warmup` seconds whose numbers are thrown away, then the measured run of
// `duration` seconds. Every connection cycles through the same request mix
// (REQUESTS below), so every variant sees identical traffic. Prints one JSON
// object on stdout with the measured run's numbers.
import autocannon from 'autocannon';

const JSON_HEADERS = { 'content-type': 'application/json' };

// The request mix: reads of products, search, users, inventory, and one small
// order for p1 (quantity 1). p1 starts with 150 in stock, so after 150 orders
// the POST answers 409; the app is restarted per run, so every variant sees the
// same sequence, and the non-2xx count is reported.
export const REQUESTS = [
  { method: 'GET', path: '/api/products/p1' },
  { method: 'GET', path: '/api/products?q=desk' },
  { method: 'GET', path: '/api/users/u1' },
  { method: 'GET', path: '/api/products/p1/inventory' },
  {
    method: 'POST',
    path: '/api/orders',
    headers: JSON_HEADERS,
    body: JSON.stringify({ userId: 'u1', items: [{ productId: 'p1', quantity: 1 }], paymentToken: 'tok_visa' }),
  },
];

function run(opts) {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function summarise(result) {
  const codes = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    codes[code] = stats.count;
  }
  return {
    duration_s: result.duration,
    connections: result.connections,
    requests_total: result.requests.total,
    requests_per_s: result.requests.average,
    requests_per_s_stddev: result.requests.stddev,
    latency_ms: {
      mean: result.latency.average,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    status_2xx: result['2xx'],
    non_2xx: result.non2xx,
    status_codes: codes,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

async function main() {
  const cfg = JSON.parse(process.argv[2] ?? '{}');
  if (typeof cfg.url !== 'string') {
    throw new Error('usage: node driver.mjs \'{"url": "http://127.0.0.1:PORT", "duration": 10}\'');
  }
  const base = {
    url: cfg.url,
    connections: cfg.connections ?? 10,
    pipelining: 1,
    requests: REQUESTS,
  };
  const warmup = cfg.warmup ?? 2;
  if (warmup > 0) {
    await run({ ...base, duration: warmup });
  }
  if (cfg.handshake) {
    // Tell the caller the warm-up is over (it samples the app's CPU time) and
    // wait for its go-ahead on stdin.
    process.stdout.write('{"phase": "warm"}\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    process.stdin.pause();
  }
  const result = await run({ ...base, duration: cfg.duration ?? 10 });
  process.stdout.write(`${JSON.stringify(summarise(result))}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
