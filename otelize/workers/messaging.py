"""Messaging worker: a span around each queue or stream consumer's handler.

Found in a file that imports the library, where the handler is registered:

- bullmq:  `new Worker('emails', async (job) => {...})`
- agenda:  `agenda.define('send email', async (job) => {...})` (options in between too)
- kafkajs: `consumer.run({ eachMessage: async ({ message }) => {...} })` (and `eachBatch`)
- amqplib: `channel.consume('tasks', async (msg) => {...})`
- bull, bee-queue: `queue.process(async (job) => {...})` (a job name and a concurrency before it too),
  on a queue the file makes (`const queue = new Queue('videos')`)
- kue: `queue.process('email', 5, (job, done) => {...})` on `queue = kue.createQueue()` (the job
  type is the destination)

The handler is the inline function or a function of the same file named there.
bullmq, agenda, bull, bee-queue and kue have no OpenTelemetry instrumentation, so their handler gets
the CONSUMER span: `process <destination>`, with `messaging.system`,
`messaging.destination.name` where the code names it (a literal or a module
constant) and `messaging.operation.type: process`. kafkajs and amqplib have
one (the dependency worker adds it), which already makes the CONSUMER span
around the handler: there the handler gets an INTERNAL span only, inside it.

Producers: a function of the file that adds a job to a queue the file makes
(the queue's binding, a module const, `this.x = ...` or a class field, is
matched with the receiver of the adding call):

- bullmq: `q = new Queue('emails')`, then `q.add(...)` / `q.addBulk(...)`
- bull: `q = new Queue('emails')` (or `Queue('emails')`), then `q.add(...)`
- bee-queue: `q = new Queue('emails')`, then `q.createJob(...)`
- kue: `q = kue.createQueue()`, then `q.create('email', ...)` (the job type is the destination)
- kafkajs: `p = kafka.producer()`, then `p.send(...)` / `p.sendBatch(...)`
- amqplib: `ch = await conn.createChannel()`, then `ch.publish(...)` / `ch.sendToQueue(...)`

Without an instrumentation (bullmq, bull, bee-queue, kue) the function gets the
PRODUCER span: `send <destination>` where every adding call names the same one,
with `messaging.system`, `messaging.destination.name` and
`messaging.operation.type: send`. kafkajs and amqplib make their own PRODUCER
span for the send: there the function gets an INTERNAL span around it.
A function that is also a consumer's handler keeps its CONSUMER span.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, replace

from tree_sitter import Node

from otelize.synthesize.edits import Skip, WorkerResult
from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.parse import captures, query, text, source_order
from otelize.plan.registry import BY_NAME, WITH_SPAN
from otelize.workers.base import Task, WorkerContext
from otelize.workers.eligibility import candidates
from otelize.workers.spans import make_spec, style_of, wrap_file
from otelize.synthesize.wrap import ts_string

WITH_CONSUMER_SPAN = BY_NAME["messaging"].helper("withConsumerSpan")
WITH_PRODUCER_SPAN = BY_NAME["messaging"].helper("withProducerSpan")


@dataclass(frozen=True)
class Library:
    system: str  # messaging.system
    instrumented: bool  # an official instrumentation makes the CONSUMER span itself


LIBRARIES = {
    "bullmq": Library("bullmq", False),
    "agenda": Library("agenda", False),
    "@hokify/agenda": Library("agenda", False),
    "kafkajs": Library("kafka", True),
    "amqplib": Library("rabbitmq", True),  # also amqplib/callback_api
    "bull": Library("bull", False),
    "bee-queue": Library("bee-queue", False),
    "kue": Library("kue", False),
}
_CALLS = "[(call_expression) (new_expression)] @c"


@dataclass(frozen=True)
class Producing:
    """How a library's producer is made and what adds a message to it."""

    library: str  # a key of LIBRARIES
    made_by: str  # "class": `new <the class>(name)`; "factory": `<module>.<member>()`; "method": `x.<member>()`
    member: str  # the class's export name ("" for the module's default export), or the factory's/method's name
    adds: frozenset[str]  # the producer's methods that add a message
    destination: str  # "queue": the queue's name (the maker's first argument); "call": the adding call's; "": none


PRODUCING = (
    Producing("bullmq", "class", "Queue", frozenset({"add", "addBulk"}), "queue"),
    Producing("bull", "class", "", frozenset({"add"}), "queue"),
    Producing("bee-queue", "class", "", frozenset({"createJob"}), "queue"),
    Producing("kue", "factory", "createQueue", frozenset({"create"}), "call"),
    Producing("kafkajs", "method", "producer", frozenset({"send", "sendBatch"}), ""),
    Producing("amqplib", "method", "createChannel", frozenset({"publish", "sendToQueue"}), ""),
    Producing("amqplib", "method", "createConfirmChannel", frozenset({"publish", "sendToQueue"}), ""),
)


@dataclass(frozen=True)
class Send:
    library: Library
    destination: str | None
    start: int  # the adding call's first byte


@dataclass(frozen=True)
class Registration:
    library: Library
    hook: str  # processor | handler | eachMessage | eachBatch | onMessage
    handler: Node
    destination: str | None
    line: int


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    pf, facts = ctx.parsed[path], ctx.facts[path]
    style = style_of(ctx, path)
    stem = posixpath.basename(path).split(".", 1)[0]
    chosen: dict[int, tuple[FunctionFact, Registration]] = {}
    unresolved: list[tuple[Registration, str]] = []
    for reg in registrations(pf.root, facts):
        fn = _handler_function(reg.handler, facts)
        if fn is None:
            unresolved.append((reg, text(reg.handler)))
            continue
        if reg.handler.type != "identifier":  # an inline handler is named after its file and hook
            fn = replace(fn, name=f"{stem}.{reg.hook}", qualname=f"{stem}.{reg.hook}", kind="arrow", class_name=None)
        # a registered handler is an entry point even when the module does not export it
        chosen.setdefault(fn.start, (replace(fn, exported=True), reg))
    producers = _producer_functions(pf.root, facts, set(chosen))
    for fn, _ in producers.values():
        chosen.setdefault(fn.start, (fn, None))  # type: ignore[arg-type]
    # span names stay unique: a destination that two functions send to names neither
    sent_to = Counter(_destination(sends) for _, sends in producers.values())

    def choose(fn: FunctionFact):  # noqa: ANN202
        reg = chosen[fn.start][1]
        if reg is None:
            sends = producers[fn.start][1]
            return _producer_spec(ctx, path, fn, style, sends, named=sent_to[_destination(sends)] == 1)
        if reg.library.instrumented:  # inside the instrumentation's CONSUMER span
            return make_spec(ctx, path, fn, style, WITH_SPAN, [])
        q = style.quote
        extra: list[tuple[str, str, object]] = [
            ("messaging.operation.type", ts_string("process", q), "process"),
            ("messaging.system", ts_string(reg.library.system, q), reg.library.system),
        ]
        name = None
        if reg.destination is not None:
            extra.append(("messaging.destination.name", ts_string(reg.destination, q), reg.destination))
            name = f"process {reg.destination}"
        return make_spec(ctx, path, fn, style, WITH_CONSUMER_SPAN, extra, name=name)

    result = wrap_file(ctx, task, choose, [fn for fn, _ in sorted(chosen.values(), key=lambda c: c[0].start)])
    for reg, handler in unresolved:
        result.skips.append(Skip(path, reg.line, handler, f"{reg.library.system} handler is not a function of this file; "
                                 "wrap it where it is defined", task.worker))
    return result


def registrations(root: Node, facts: FileFacts) -> list[Registration]:
    """Every consumer handler registered in the file, in source order."""
    libs = {imp.module.split("/", 1)[0] if not imp.module.startswith("@") else imp.module: imp for imp in facts.imports}
    used = {m: LIBRARIES[m] for m in libs if m in LIBRARIES}
    if not used:
        return []
    workers = _bullmq_worker_names(facts)
    out = []
    calls = sorted(captures(query(_CALLS), root).get("c", []), key=source_order)
    # bull, bee-queue and kue queues this file makes: `queue.process(...)` registers their processor
    queues = {k: v for k, v in _bound(calls, facts).items() if v[0].library in ("bull", "bee-queue", "kue")}
    for call in calls:
        args = call.child_by_field_name("arguments")
        parts = [a for a in args.named_children if a.type != "comment"] if args is not None else []
        line = call.start_point[0] + 1
        if call.type == "new_expression":
            ctor = call.child_by_field_name("constructor")
            if "bullmq" in used and ctor is not None and text(ctor) in workers and len(parts) >= 2:
                out.append(Registration(used["bullmq"], "processor", parts[1], _name(parts[0], facts), line))
            continue
        fn = call.child_by_field_name("function")
        if fn is None or fn.type != "member_expression":
            continue
        method = text(fn.child_by_field_name("property"))
        queue = queues.get(text(fn.child_by_field_name("object"))) if method == "process" else None
        if queue is not None and parts and parts[-1].type in ("arrow_function", "function_expression", "function", "identifier"):
            producing, queue_name = queue
            # bull: process([name,] [concurrency,] fn), the queue is the destination; kue:
            # process(type, [n,] fn), the job type is
            destination = queue_name if producing.destination == "queue" else (_name(parts[0], facts) if len(parts) >= 2 else None)
            out.append(Registration(LIBRARIES[producing.library], "processor", parts[-1], destination, line))
            continue
        agenda = used.get("agenda") or used.get("@hokify/agenda")
        if method == "define" and agenda is not None and len(parts) >= 2:
            out.append(Registration(agenda, "handler", parts[-1], _name(parts[0], facts), line))
        elif method == "consume" and "amqplib" in used and len(parts) >= 2:
            out.append(Registration(used["amqplib"], "onMessage", parts[1], _name(parts[0], facts), line))
        elif method == "run" and "kafkajs" in used and parts and parts[0].type == "object":
            topic = _kafka_topic(root, facts)
            for pair in parts[0].named_children:
                key = pair.child_by_field_name("key") if pair.type == "pair" else None
                if key is not None and text(key) in ("eachMessage", "eachBatch"):
                    out.append(Registration(used["kafkajs"], text(key), pair.child_by_field_name("value"), topic, line))
    return out


def _bullmq_worker_names(facts: FileFacts) -> set[str]:
    """How the file refers to bullmq's Worker class: `Worker`, its alias, or `bullmq.Worker`."""
    names = set()
    for imp in facts.imports:
        if imp.module == "bullmq":
            names |= {local for local, imported in imp.names if imported == "Worker"}
            if imp.namespace:
                names.add(f"{imp.namespace}.Worker")
            if imp.default:
                names.add(f"{imp.default}.Worker")
    return names


def _name(node: Node, facts: FileFacts) -> str | None:
    """A destination the code names: a string literal, or a module constant holding one."""
    if node.type == "string":
        return text(node)[1:-1] or None
    if node.type == "identifier":
        return facts.constants.get(text(node))
    return None


def _kafka_topic(root: Node, facts: FileFacts) -> str | None:
    """The topic of the file's one `subscribe({ topic })` (or `topics: [one]`), if there is exactly one."""
    topics: set[str | None] = set()
    for call in captures(query(_CALLS), root).get("c", []):
        fn = call.child_by_field_name("function")
        if call.type != "call_expression" or fn is None or fn.type != "member_expression":
            continue
        if text(fn.child_by_field_name("property")) != "subscribe":
            continue
        args = [a for a in call.child_by_field_name("arguments").named_children if a.type == "object"]
        for pair in (p for a in args[:1] for p in a.named_children if p.type == "pair"):
            key, value = text(pair.child_by_field_name("key")), pair.child_by_field_name("value")
            if key == "topic":
                topics.add(_name(value, facts))
            elif key == "topics" and value.type == "array":
                items = [v for v in value.named_children if v.type != "comment"]
                topics |= {_name(v, facts) for v in items} if items else {None}
    return next(iter(topics)) if len(topics) == 1 else None


def _destination(sends: list[Send]) -> str | None:
    """The one destination every adding call of a function names, else None."""
    found = {s.destination for s in sends}
    return found.pop() if len(found) == 1 else None


def _producer_spec(ctx: WorkerContext, path: str, fn: FunctionFact, style, sends: list[Send], named: bool):  # noqa: ANN001, ANN202
    """`named`: the span may be named `send <destination>` (no other function of the file sends there)."""
    library = sends[0].library
    if library.instrumented:  # the instrumentation's PRODUCER span is made inside this one
        return make_spec(ctx, path, fn, style, WITH_SPAN, [])
    q = style.quote
    extra: list[tuple[str, str, object]] = [
        ("messaging.operation.type", ts_string("send", q), "send"),
        ("messaging.system", ts_string(library.system, q), library.system),
    ]
    destination = _destination(sends)
    name = None
    if destination is not None:
        extra.append(("messaging.destination.name", ts_string(destination, q), destination))
        name = f"send {destination}" if named else None
    return make_spec(ctx, path, fn, style, WITH_PRODUCER_SPAN, extra, name=name)


def _producer_functions(root: Node, facts: FileFacts, taken: set[int]) -> dict[int, tuple[FunctionFact, list[Send]]]:
    """The wrap candidates of the file that add a message to a producer the file makes,
    with their adding calls, by the function's first byte: each call counts for the
    innermost candidate around it, and only for one of a single library."""
    calls = sorted(captures(query(_CALLS), root).get("c", []), key=source_order)
    bound = _bound(calls, facts)
    if not bound:
        return {}
    fns = [fn for fn in candidates(facts) if fn.body_start is not None and not fn.is_signature]
    out: dict[int, tuple[FunctionFact, list[Send]]] = {}
    for call in calls:
        callee = call.child_by_field_name("function") if call.type == "call_expression" else None
        if callee is None or callee.type != "member_expression":
            continue
        receiver, method = callee.child_by_field_name("object"), text(callee.child_by_field_name("property"))
        hit = bound.get(text(receiver)) if receiver is not None else None
        if hit is None or method not in hit[0].adds:
            continue
        producing, queue_name = hit
        if producing.destination == "call":
            args = call.child_by_field_name("arguments")
            parts = [a for a in args.named_children if a.type != "comment"] if args is not None else []
            queue_name = _name(parts[0], facts) if parts else None
        around = [fn for fn in fns if fn.body_start <= call.start_byte < fn.body_end]  # type: ignore[operator]
        if not around:
            continue
        fn = max(around, key=lambda f: f.body_start)  # the innermost
        if fn.start in taken:
            continue
        send = Send(LIBRARIES[producing.library], queue_name, call.start_byte)
        entry = out.setdefault(fn.start, (fn, []))
        if entry[1] and entry[1][0].library != send.library:
            continue  # two libraries in one function: the first one's span
        entry[1].append(send)
    return out


def _bound(calls: list[Node], facts: FileFacts) -> dict[str, tuple[Producing, str | None]]:
    """The producers the file makes, by the text of their binding (`emails`, `this.queue`),
    with the queue's name where the maker's first argument names it."""
    makers = _makers(facts)
    bound: dict[str, tuple[Producing, str | None]] = {}
    if not makers:
        return bound
    for call in calls:
        made = _made(call, makers)
        if made is None:
            continue
        key = _binding(call)
        if key is not None:
            parts = _args(call)
            bound.setdefault(key, (made, _name(parts[0], facts) if parts and made.destination == "queue" else None))
    return bound


def _args(call: Node) -> list[Node]:
    args = call.child_by_field_name("arguments")
    return [a for a in args.named_children if a.type != "comment"] if args is not None else []


def _makers(facts: FileFacts) -> dict[str, Producing]:
    """What makes a producer in this file, by the text of the callee (`Queue`, `bullmq.Queue`,
    `kue.createQueue`) or, for a method, by `.name` (`.producer`)."""
    out: dict[str, Producing] = {}
    imported = {imp.module.split("/", 1)[0] if not imp.module.startswith("@") else imp.module: [] for imp in facts.imports}
    for imp in facts.imports:
        top = imp.module.split("/", 1)[0] if not imp.module.startswith("@") else imp.module
        imported[top].append(imp)
    for p in PRODUCING:
        for imp in imported.get(p.library, []):
            if p.made_by == "method":
                out[f".{p.member}"] = p
                continue
            whole = [n for n in (imp.default, imp.namespace) if n]
            if p.made_by == "class" and not p.member:
                names = whole + [local for local, name in imp.names if name == "default"]
            elif p.made_by == "class":
                names = [local for local, name in imp.names if name == p.member] + [f"{w}.{p.member}" for w in whole]
            else:
                names = [f"{w}.{p.member}" for w in whole]
            for n in names:
                out.setdefault(n, p)
    return out


def _made(call: Node, makers: dict[str, Producing]) -> Producing | None:
    callee = call.child_by_field_name("constructor" if call.type == "new_expression" else "function")
    if callee is None:
        return None
    found = makers.get(text(callee))
    if found is not None:
        return found if (found.made_by == "class") == (call.type == "new_expression") or found.library == "bull" else None
    if call.type == "call_expression" and callee.type == "member_expression":
        return makers.get(f".{text(callee.child_by_field_name('property'))}")
    return None


def _binding(node: Node) -> str | None:
    """The name the value of `node` is bound to: `const q = ...`, `this.q = ...` / `q = ...`,
    or a class field `private q = ...` (as `this.q`); through `await`, parentheses and `as`."""
    parent = node.parent
    while parent is not None and parent.type in ("await_expression", "parenthesized_expression", "as_expression",
                                                 "non_null_expression", "satisfies_expression"):
        node, parent = parent, parent.parent
    if parent is None:
        return None
    if parent.type == "variable_declarator" and parent.child_by_field_name("value") == node:
        name = parent.child_by_field_name("name")
        return text(name) if name is not None and name.type == "identifier" else None
    if parent.type == "assignment_expression" and parent.child_by_field_name("right") == node:
        left = parent.child_by_field_name("left")
        return text(left) if left is not None and left.type in ("identifier", "member_expression") else None
    if parent.type in ("public_field_definition", "field_definition") and parent.child_by_field_name("value") == node:
        name = parent.child_by_field_name("name") or parent.child_by_field_name("property")
        return f"this.{text(name)}" if name is not None else None
    return None


def _handler_function(node: Node, facts: FileFacts) -> FunctionFact | None:
    """The FunctionFact of an inline handler, or of the file's top-level function it names."""
    if node.type in ("arrow_function", "function_expression", "function"):
        return next((fn for fn in facts.functions if fn.start == node.start_byte and fn.end == node.end_byte), None)
    if node.type == "identifier":
        name = text(node)
        return next((fn for fn in facts.functions if fn.qualname == name and fn.class_name is None
                     and fn.kind in ("function", "arrow", "function-expression")), None)
    return None
