// Behaviour equivalence: call every function of the original and of the
// instrumented build of tests/fixtures/shapes/equivalence (compiled to
// CommonJS) and print what each call did, plus the spans the instrumented
// calls produced. Usage: node run.js <original tricky.js> <instrumented tricky.js>
'use strict';
const path = require('node:path');
const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

const exporter = new InMemorySpanExporter();
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();

function describe(value, seen = new Set()) {
  if (value === undefined) return { undefined: true };
  if (typeof value === 'function') return { function: value.name };
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return { cycle: true };
  seen.add(value);
  const out = { ctor: value.constructor ? value.constructor.name : null };
  for (const key of Object.keys(value).sort()) out[key] = describe(value[key], seen);
  return out;
}

function error(e) {
  if (e instanceof Error) {
    return { class: e.constructor.name, name: e.name, message: e.message, code: e.code ?? null };
  }
  return { thrown: describe(e) };
}

async function call(fn) {
  let result;
  try {
    result = fn();
  } catch (e) {
    return { threw: error(e) };
  }
  const isPromise = result instanceof Promise;
  const isThenable = !isPromise && result !== null && typeof result === 'object' && typeof result.then === 'function';
  if (isPromise || isThenable) {
    try {
      return { promise: isPromise, thenable: isThenable, resolved: describe(await result) };
    } catch (e) {
      return { promise: isPromise, thenable: isThenable, rejected: error(e) };
    }
  }
  return { returned: describe(result) };
}

function scenarios(m) {
  const t = () => new m.Tricky();
  return {
    'Base.greet': () => new m.Base().greet('ann'),
    'Tricky.whoAmI': () => t().whoAmI(),
    'Tricky.whoAmI detached': () => { const f = t().whoAmI; return f(); },
    'Tricky.whoAmI call other': () => t().whoAmI.call({ label: 'other' }),
    'Tricky.chain returns this': () => { const x = t(); return x.chain('!') === x && x.whoAmI(); },
    'Tricky.greet super': () => t().greet('bob'),
    'Tricky.countArgs 0': () => t().countArgs(),
    'Tricky.countArgs 1': () => t().countArgs(1),
    'Tricky.countArgs undefined': () => t().countArgs(undefined, undefined),
    'Tricky.countArgs rest': () => t().countArgs(1, 2, 3, 4),
    'Tricky.defaults none': () => t().defaults(),
    'Tricky.defaults some': () => t().defaults(undefined, { c: 3 }, [undefined, 5, 6]),
    'Tricky.defaults all': () => t().defaults(9, { b: 8, c: 7 }, [6]),
    'Tricky.defaults bad destructuring': () => t().defaults(1, null),
    'Tricky.arrowProp detached': () => { const f = t().arrowProp; return f(1); },
    'Tricky.arrowProp call other': () => t().arrowProp.call({ label: 'other' }, 2),
    'Tricky.make': () => m.Tricky.make('made').whoAmI(),
    'Tricky.make default': () => m.Tricky.make().whoAmI(),
    'Tricky.staticThis': () => m.Tricky.staticThis(),
    'Tricky.staticThis detached': () => { const f = m.Tricky.staticThis; return f(); },
    'Tricky.asyncThis': () => t().asyncThis(),
    'Tricky.asyncThis detached': () => { const f = t().asyncThis; return f(); },
    'tryFinallyReturn positive': () => m.tryFinallyReturn(1),
    'tryFinallyReturn negative': () => m.tryFinallyReturn(-1),
    'finallyOverrides throw': () => m.finallyOverrides(1),
    'finallyOverrides try': () => m.finallyOverrides(0),
    syncReturningPromise: () => m.syncReturningPromise('late'),
    syncReturningRejection: () => m.syncReturningRejection('declined'),
    promiseOfThenable: () => m.promiseOfThenable(42),
    throwingSync: () => m.throwingSync('boom'),
    throwingNonError: () => m.throwingNonError('a string'),
    'throwingNonError ok': () => m.throwingNonError(''),
    rejectingAsync: () => m.rejectingAsync('bad'),
    asyncWithoutAwait: () => m.asyncWithoutAwait(21),
    nestedCallbacks: () => m.nestedCallbacks([0, 1, 2, 3]),
    'thisOfPlainFunction plain': () => { const f = m.thisOfPlainFunction; return f('plain'); },
    'thisOfPlainFunction as export': () => m.thisOfPlainFunction('export'),
    'thisOfPlainFunction call': () => m.thisOfPlainFunction.call({}, 'obj', 'extra'),
    'thisOfPlainFunction number': () => m.thisOfPlainFunction.call(5, 'num'),
    'lazyQuery sorted after return': () => m.lazyQuery('users').sort(),
    'proxied traps': () => { const log = []; m.proxied(log); return log; },
    'withThenGetter reads': () => { const log = []; m.withThenGetter(log); return log; },
    paramNamedLikeTheHelper: () => m.paramNamedLikeTheHelper((x) => x + 1, 20),
    'varRedeclaresParameter 5': () => m.varRedeclaresParameter(5),
    'varRedeclaresParameter none': () => m.varRedeclaresParameter(),
    // dropped on purpose: nobody handles the rejection (counted per build, see main)
    'unhandled rejection': () => { m.syncReturningRejection('nobody handles this'); return 'dropped'; },
  };
}

async function runAll(file) {
  const m = require(path.resolve(file));
  const out = {};
  for (const [name, fn] of Object.entries(scenarios(m))) {
    out[name] = await call(fn);
  }
  out['counters'] = { returned: describe(m.calls) };
  return out;
}

async function main() {
  const unhandled = { original: [], instrumented: [] };
  let phase = 'original';
  process.on('unhandledRejection', (reason) => { unhandled[phase].push(error(reason)); });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
  const original = await runAll(process.argv[2]);
  await settle();
  phase = 'instrumented';
  const before = exporter.getFinishedSpans().length;
  const instrumented = await runAll(process.argv[3]);
  await settle();
  const spans = exporter.getFinishedSpans().map((s) => ({
    name: s.name,
    status: s.status.code,
    errorType: s.attributes['error.type'] ?? null,
    parent: s.parentSpanContext ? s.parentSpanContext.spanId : null,
    id: s.spanContext().spanId,
  }));
  process.stdout.write(JSON.stringify({ original, instrumented, spansBefore: before, spans, unhandled }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
