// Micro-benchmark of the otelize span helper (templates/otel.ts.j2), for
// tests/bench/bench_helper.py.
//
//   node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 helper-bench.mjs \
//     '{"helper": "/abs/path/otel.js", "mode": "off", "iterations": 2000000, "allocIterations": 50000}'
//
// mode "off": no tracer provider registered (the helper imported by an app that
// never starts the SDK). mode "on": a NodeTracerProvider (AsyncLocalStorage
// context manager) with a BatchSpanProcessor and an exporter that drops
// everything, for reference.
//
// For each case it prints ns/call (best of a few timed loops) and, for an
// allocation run of `allocIterations` calls: heap growth per call with no GC in
// between (the young generation is made big enough by --min/max-semi-space-size;
// runs where a GC happened anyway are flagged), and what is still retained after
// a full gc() (should be ~0). Cases:
//   direct   work(i)                                      the function alone
//   floor    passThrough(name, {attrs}, () => work(i))    what the wrapping itself needs:
//                                                         an attributes literal and a closure
//   helper   withSpan(name, {attrs}, () => work(i))       the otelize helper
// each for a sync function and an async one (awaited).
import { createRequire } from 'node:module';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const cfg = JSON.parse(process.argv[2] ?? '{}');
if (typeof cfg.helper !== 'string') {
  throw new Error('usage: node helper-bench.mjs \'{"helper": "/abs/otel.js", "mode": "off"}\'');
}
const mode = cfg.mode ?? 'off';
const ITER = cfg.iterations ?? 2_000_000;
const ALLOC_ITER = cfg.allocIterations ?? 50_000;
const REPEATS = cfg.repeats ?? 5;
const gc = globalThis.gc;
if (typeof gc !== 'function') {
  throw new Error('run with --expose-gc');
}

let provider = null;
if (mode === 'on') {
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const dropAll = {
    export(_spans, done) {
      done({ code: 0 });
    },
    shutdown() {
      return Promise.resolve();
    },
    forceFlush() {
      return Promise.resolve();
    },
  };
  provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropAll)] });
  provider.register();
} else if (mode !== 'off') {
  throw new Error(`unknown mode ${mode}`);
}

// Loaded after register(): the helper's module-level tracer is a ProxyTracer
// either way, as it is in an app.
const helper = require(cfg.helper);
const { withSpan } = helper;

function work(i) {
  return (i * 31) ^ (i >>> 3);
}
async function workAsync(i) {
  return (i * 31) ^ (i >>> 3);
}
function passThrough(_name, _attributes, fn) {
  return fn();
}

const cases = {
  'sync direct': (i) => work(i),
  'sync floor': (i) =>
    passThrough('bench.sync', { 'code.file.path': 'src/bench.ts', 'code.function.name': 'work' }, () => work(i)),
  'sync helper': (i) =>
    withSpan('bench.sync', { 'code.file.path': 'src/bench.ts', 'code.function.name': 'work' }, () => work(i)),
  'async direct': (i) => workAsync(i),
  'async floor': (i) =>
    passThrough('bench.async', { 'code.file.path': 'src/bench.ts', 'code.function.name': 'workAsync' }, () =>
      workAsync(i),
    ),
  'async helper': (i) =>
    withSpan('bench.async', { 'code.file.path': 'src/bench.ts', 'code.function.name': 'workAsync' }, () =>
      workAsync(i),
    ),
};

// Separate loop functions per kind so that each stays monomorphic enough; the
// case function is still a megamorphic call site across cases, equally for all.
function syncLoop(fn, n) {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc = (acc + fn(i)) | 0;
  }
  return acc;
}
async function asyncLoop(fn, n) {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc = (acc + (await fn(i))) | 0;
  }
  return acc;
}

// GC events, by start time: entries arrive asynchronously, so the allocation run
// counts those that started inside its time window once they have arrived.
const gcStarts = [];
const obs = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcStarts.push(entry.startTime);
  }
});
obs.observe({ entryTypes: ['gc'] });
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

let sink = 0;
async function timeCase(name, fn) {
  const loop = name.startsWith('async') ? asyncLoop : syncLoop;
  // Warm up: let the optimising compiler see the case.
  sink ^= await loop(fn, Math.min(ITER, 200_000));
  let best = Infinity;
  const samples = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = process.hrtime.bigint();
    sink ^= await loop(fn, ITER);
    const ns = Number(process.hrtime.bigint() - t0) / ITER;
    samples.push(ns);
    best = Math.min(best, ns);
  }
  // Allocation: gc, heapUsed, N calls, heapUsed (growth = bytes allocated when
  // no GC ran in between), gc, heapUsed (retained).
  gc();
  gc();
  const t0 = performance.now();
  const before = process.memoryUsage().heapUsed;
  sink ^= await loop(fn, ALLOC_ITER);
  const grown = process.memoryUsage().heapUsed;
  const t1 = performance.now();
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  await settle();
  const gcDuring = gcStarts.filter((t) => t >= t0 && t <= t1).length;
  samples.sort((a, b) => a - b);
  return {
    case: name,
    ns_per_call: best,
    ns_per_call_median: samples[Math.floor(samples.length / 2)],
    alloc_bytes_per_call: (grown - before) / ALLOC_ITER,
    alloc_gc_during: gcDuring,
    retained_bytes_per_call: (after - before) / ALLOC_ITER,
  };
}

async function main() {
  const only = cfg.cases ?? Object.keys(cases);
  const results = [];
  for (const name of only) {
    results.push(await timeCase(name, cases[name]));
  }
  if (provider !== null) {
    await provider.shutdown();
  }
  obs.disconnect();
  process.stdout.write(
    `${JSON.stringify({ mode, iterations: ITER, alloc_iterations: ALLOC_ITER, repeats: REPEATS, results, sink: sink & 1 })}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
