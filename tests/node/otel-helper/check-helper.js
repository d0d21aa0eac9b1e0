// Runtime checks of the generated span helper (src/otel.ts compiled to CommonJS).
// Usage: node check-helper.js <path to compiled otel.js> [--no-sdk]
// Prints one JSON object for the Python test to assert on.
'use strict';
const path = require('node:path');

const helperPath = path.resolve(process.argv[2]);
const noSdk = process.argv.includes('--no-sdk');

let exporter = null;
if (!noSdk) {
  const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
  exporter = new InMemorySpanExporter();
  // register() also installs the AsyncLocalStorage context manager.
  new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();
}

const otel = require(helperPath);

// Every unhandled rejection, from the start (the helper must not hide one).
const unhandledReasons = [];
process.on('unhandledRejection', (reason) => {
  unhandledReasons.push(reason);
});

// A lazy thenable, as ORMs return (mongoose Query, knex builder, PrismaPromise):
// calling `then` runs the query. `sort` must still be possible after return.
class LazyQuery {
  constructor() {
    this.thenCalls = 0;
    this.sorted = false;
  }
  sort() {
    if (this.thenCalls > 0) throw new Error('Query was already executed');
    this.sorted = true;
    return this;
  }
  then(onFulfilled, onRejected) {
    this.thenCalls += 1;
    return Promise.resolve(this.sorted ? 'sorted rows' : 'rows').then(onFulfilled, onRejected);
  }
}

// A Proxy that logs every trap it sees.
function loggingProxy(log) {
  const handler = {};
  for (const trap of ['get', 'has', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'ownKeys', 'apply', 'set',
    'defineProperty', 'deleteProperty', 'isExtensible', 'preventExtensions', 'setPrototypeOf']) {
    handler[trap] = (...args) => {
      log.push(trap);
      return Reflect[trap](...args);
    };
  }
  return new Proxy({ value: 1 }, handler);
}

function ticksUntilSettled(promise) {
  let settled = false;
  promise.then(() => { settled = true; }, () => { settled = true; });
  return (async () => {
    let ticks = 0;
    while (!settled) {
      await undefined;
      ticks += 1;
    }
    return ticks;
  })();
}

function maxDepth(recurse) {
  let depth = 0;
  const step = () => {
    depth += 1;
    recurse(step);
  };
  try {
    step();
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
  return depth;
}

function hrToNanos(hr) {
  return BigInt(hr[0]) * 1000000000n + BigInt(hr[1]);
}

function spanJson(span) {
  return {
    name: span.name,
    kind: span.kind,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext ? span.parentSpanContext.spanId : null,
    status: { code: span.status.code, message: span.status.message ?? null },
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    durationNanos: String(hrToNanos(span.endTime) - hrToNanos(span.startTime)),
  };
}

class NotFoundError extends Error {}

async function main() {
  const out = {};

  // Return value unchanged (same object).
  const obj = { a: 1 };
  out.sameValue = otel.withSpan('sync.ok', { 'x.y': 'z' }, () => obj) === obj;

  // Thrown error is the same object.
  const thrown = new NotFoundError('missing');
  try {
    otel.withSpan('sync.throw', {}, () => {
      throw thrown;
    });
    out.sameError = false;
  } catch (error) {
    out.sameError = error === thrown;
  }

  // Sync function returning a promise: the span ends after the promise settles.
  // Span times are anchored on Date.now() at span start, so they cannot be
  // compared with another clock: check the order of events instead, and that
  // the span lasted at least as long as the timer.
  let endedBeforeResolve = null;
  const p = new Promise((resolve) =>
    setTimeout(() => {
      endedBeforeResolve = exporter ? exporter.getFinishedSpans().some((s) => s.name === 'async.ok') : false;
      resolve('late');
    }, 30),
  );
  const returned = otel.withClientSpan('async.ok', {}, () => p);
  // a sync function's promise comes back as the promise `then` derives from it
  out.samePromise = returned === p;
  out.returnedPromise = returned instanceof Promise;
  out.asyncValue = await returned;
  out.endedBeforeResolve = endedBeforeResolve;

  // Rejected promise.
  const rejection = new TypeError('bad');
  const rejected = otel.withSpan('async.reject', {}, async () => {
    throw rejection;
  });
  try {
    await rejected;
    out.sameRejection = false;
  } catch (error) {
    out.sameRejection = error === rejection;
  }

  // Cache reads.
  out.cacheMissValue = otel.withCacheReadSpan('cache.miss', {}, () => undefined) ?? null;
  out.cacheHitValue = await otel.withCacheReadSpan('cache.hit', {}, async () => 'v');
  out.cacheNullValue = await otel.withCacheReadSpan('cache.null', {}, async () => null);

  // Nesting.
  otel.withSpan('outer', {}, () => otel.withSpan('inner', {}, () => 1));
  await otel.withSpan('outer.async', {}, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return otel.withClientSpan('inner.async', {}, async () => 2);
  });

  // recordActiveSpanError on the active span, and with no active span.
  otel.recordActiveSpanError('no span: ignored');
  otel.withSpan('handler', {}, () => otel.recordActiveSpanError(new RangeError('r')));
  otel.withSpan('handler.string', {}, () => otel.recordActiveSpanError('plain string'));

  // Lazy thenables are never started by the helper; their span ends at return.
  const lazy = otel.withClientSpan('lazy.thenable', {}, () => new LazyQuery());
  await new Promise((resolve) => setTimeout(resolve, 5));
  out.lazyThenCallsAfterReturn = lazy.thenCalls;
  try {
    out.lazySortable = lazy instanceof LazyQuery && lazy.sort() === lazy;
  } catch (error) {
    out.lazySortable = String(error);
  }
  out.lazyValue = await lazy;
  out.lazyThenCalls = lazy.thenCalls;
  out.lazyCacheHit = otel.withCacheReadSpan('lazy.cache', {}, () => new LazyQuery()).thenCalls;

  // A `then` getter is never read; a Proxy's traps never fire.
  let getterReads = 0;
  const withGetter = {
    get then() {
      getterReads += 1;
      return undefined;
    },
  };
  out.sameGetterObject = otel.withSpan('then.getter', {}, () => withGetter) === withGetter;
  await otel.withSpan('then.getter.async', {}, async () => 1);
  out.thenGetterReads = getterReads;
  const traps = [];
  const proxy = loggingProxy(traps);
  out.sameProxy = otel.withSpan('proxy', {}, () => proxy) === proxy && otel.withCacheReadSpan('proxy.cache', {}, () => proxy) === proxy;
  out.proxyTraps = traps;

  // A real library's lazy builder: knex without a connection (building SQL needs no driver).
  const knex = require('knex')({ client: 'pg' });
  // every execution of a builder goes through client.runner (knex/lib/builder-interface-augmenter.js)
  let knexStarted = 0;
  const runner = knex.client.runner.bind(knex.client);
  knex.client.runner = (query) => {
    knexStarted += 1;
    return runner(query);
  };
  const builder = otel.withClientSpan('knex.builder', {}, () => knex('users').where({ id: 1 }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  out.knexSql = builder.orderBy('id').limit(2).toString();
  out.knexStarted = knexStarted;

  // A rejection nobody handles is still reported; a handled one is not.
  const unhandledError = new Error('nobody handles me');
  otel.withSpan('sync.reject.unhandled', {}, () => Promise.reject(unhandledError));
  const handled = otel.withSpan('async.reject.handled', {}, () => Promise.reject(new Error('x')));
  await handled.catch(() => undefined);
  await otel.withSpan('async.reject.caught', {}, async () => { throw new Error('y'); }).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 20));
  out.unhandledRejections = unhandledReasons.length;
  out.unhandledIsTheError = unhandledReasons.length === 1 && unhandledReasons[0] === unhandledError;

  // Microtask ticks until an async method settles, bare and in otelize's wrapper shape.
  async function bare() { return 1; }
  async function wrapped() { return otel.withSpan('ticks', {}, async () => { return 1; }); }
  async function bareAwait() { await null; return 1; }
  async function wrappedAwait() { return otel.withSpan('ticks.await', {}, async () => { await null; return 1; }); }
  function syncPromise() { return Promise.resolve(1); }
  function wrappedSyncPromise() { return otel.withSpan('ticks.sync', {}, () => Promise.resolve(1)); }
  out.ticks = {
    bare: await ticksUntilSettled(bare()),
    wrapped: await ticksUntilSettled(wrapped()),
    bareAwait: await ticksUntilSettled(bareAwait()),
    wrappedAwait: await ticksUntilSettled(wrappedAwait()),
    syncPromise: await ticksUntilSettled(syncPromise()),
    wrappedSyncPromise: await ticksUntilSettled(wrappedSyncPromise()),
  };

  // Maximum recursion depth of a sync function, bare and wrapped.
  out.depth = {
    bare: maxDepth((next) => next()),
    wrapped: maxDepth((next) => otel.withSpan('depth', {}, () => next())),
  };

  out.spans = exporter ? exporter.getFinishedSpans().filter((s) => s.name !== 'depth').map(spanJson) : [];
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
