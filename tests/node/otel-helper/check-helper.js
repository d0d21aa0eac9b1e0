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
  out.samePromise = returned === p;
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

  // No unhandled rejection from the helper's side chain.
  let unhandled = 0;
  process.on('unhandledRejection', () => {
    unhandled += 1;
  });
  const handled = otel.withSpan('async.reject.handled', {}, () => Promise.reject(new Error('x')));
  await handled.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 20));
  out.unhandledRejections = unhandled;

  out.spans = exporter ? exporter.getFinishedSpans().map(spanJson) : [];
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
