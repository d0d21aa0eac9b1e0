"""Messaging worker: a span around each queue or stream consumer's handler.

Found in a file that imports the library, where the handler is registered:

- bullmq:  `new Worker('emails', async (job) => {...})`
- agenda:  `agenda.define('send email', async (job) => {...})` (options in between too)
- kafkajs: `consumer.run({ eachMessage: async ({ message }) => {...} })` (and `eachBatch`)
- amqplib: `channel.consume('tasks', async (msg) => {...})`

The handler is the inline function or a function of the same file named there.
bullmq and agenda have no OpenTelemetry instrumentation, so their handler gets
the CONSUMER span: `process <destination>`, with `messaging.system`,
`messaging.destination.name` where the code names it (a literal or a module
constant) and `messaging.operation.type: process`. kafkajs and amqplib have
one (the dependency worker adds it), which already makes the CONSUMER span
around the handler: there the handler gets an INTERNAL span only, inside it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from tree_sitter import Node

from otelize.synthesize.edits import Skip, WorkerResult
from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.parse import captures, query, text, source_order
from otelize.plan.registry import BY_NAME, WITH_SPAN
from otelize.workers.base import Task, WorkerContext
from otelize.workers.spans import make_spec, style_of, wrap_file
from otelize.synthesize.wrap import ts_string

WITH_CONSUMER_SPAN = BY_NAME["messaging"].helper("withConsumerSpan")


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
}
_CALLS = "[(call_expression) (new_expression)] @c"


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

    def choose(fn: FunctionFact):  # noqa: ANN202
        reg = chosen[fn.start][1]
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
    for call in sorted(captures(query(_CALLS), root).get("c", []), key=source_order):
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


def _handler_function(node: Node, facts: FileFacts) -> FunctionFact | None:
    """The FunctionFact of an inline handler, or of the file's top-level function it names."""
    if node.type in ("arrow_function", "function_expression", "function"):
        return next((fn for fn in facts.functions if fn.start == node.start_byte and fn.end == node.end_byte), None)
    if node.type == "identifier":
        name = text(node)
        return next((fn for fn in facts.functions if fn.qualname == name and fn.class_name is None
                     and fn.kind in ("function", "arrow", "function-expression")), None)
    return None
