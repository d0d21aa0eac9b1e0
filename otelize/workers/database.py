"""Database worker: CLIENT spans around the database wrapper's operations.

Attributes follow the current semantic conventions and are true or absent:
`db.system.name` from the driver the file imports or reaches through its project
imports; for an ORM or a wrapper, the Prisma schema's provider or the one kind of
driver the project depends on (mysql2 -> mysql); the rule's default only when no
driver is known. `db.operation.name` only from an operation the body names: the
verb of a literal SQL string, or the one driver method it calls (`findOne`,
`insertMany`, `hset`); for an in-house database client class (`Database.findById`,
no driver below it) the method's own verb. Otherwise it is left out.
`db.collection.name` (a literal table name in SQL, or the wrapper's
table/collection parameter) and `db.query.text` only for literal SQL.

Operations whose I/O goes through an auto-instrumented driver get INTERNAL spans
instead (classification decides: otelize.classify.roles.assign_roles).
"""

from __future__ import annotations

import re

from otelize.synthesize.edits import WorkerResult
from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.capindex import captures_in
from otelize.analysis.parse import ParsedFile, text
from otelize.project.model import Project
from otelize.workers.base import Task, WorkerContext
from otelize.synthesize.unwrap import find_wrapper
from otelize.plan.registry import WITH_CLIENT_SPAN
from otelize.workers.spans import make_spec, style_of, wrap_file
from otelize.synthesize.wrap import BODY_QUERY, ts_string

# method-name prefix -> operation, for in-house database client classes only
OPERATION_BY_NAME = (
    (r"^(find|get|select|query|list|search|count|fetch|load|read|exists)", "SELECT"),
    (r"^(insert|create|add|save|store)", "INSERT"),
    (r"^(update|set|patch|modify|increment|decrement|upsert)", "UPDATE"),
    (r"^(delete|remove|del|destroy|purge)", "DELETE"),
)
# an in-house database client (no driver below it): its method names are its operations
CLIENT_CLASS = re.compile(r"(?i)(database|^db|dbclient|datastore)$")
# driver / ORM methods whose name is the operation (mongodb, mongoose, prisma, sequelize, typeorm, redis)
DRIVER_METHODS = frozenset({
    "find", "findOne", "findById", "findMany", "findFirst", "findUnique", "findAll", "findByPk", "findOneBy", "findBy",
    "findAndCountAll", "findOneAndUpdate", "findOneAndDelete", "findOneAndReplace", "findByIdAndUpdate",
    "findByIdAndDelete", "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany",
    "aggregate", "countDocuments", "count", "distinct", "bulkWrite", "upsert", "createMany", "bulkCreate",
})
REDIS_COMMANDS = frozenset({
    "hget", "hset", "hgetall", "hdel", "hmset", "lpush", "rpush", "lrange", "sadd", "smembers", "zadd", "zrange",
    "setex", "mget", "mset", "expire", "incr", "decr",
})
COLLECTION_PARAMS = ("table", "tableName", "collection", "collectionName", "model", "entity")
_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|UPSERT|MERGE|REPLACE)\b", re.I)
_SQL_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+[\"`]?([A-Za-z_][\w.]*)", re.I)
_BODY = BODY_QUERY  # strings @s and member-call names @m: the query span wrapping runs too


PRISMA_PROVIDERS = {
    "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite",
    "sqlserver": "microsoft.sql_server", "mongodb": "mongodb", "cockroachdb": "cockroachdb",
}


def db_system(facts: FileFacts, options: dict, project: Project | None = None) -> str:
    """The driver this file imports or reaches; else, for an ORM or an in-house wrapper,
    what the project says: the Prisma schema's provider, or the one kind of driver
    package.json depends on; else the rule's option."""
    from otelize.classify.libraries import DB_SYSTEMS

    by_import = {**DB_SYSTEMS, **(options.get("db_system_by_import") or {})}
    for imp in facts.imports:
        if imp.type_only:
            continue
        root = imp.module if imp.module in by_import else imp.module.split("/")[0]
        if root in by_import:
            return str(by_import[root])
    if "db_system" in options:
        return str(options["db_system"])
    if "db_system_reached" in options:
        return str(options["db_system_reached"])
    if project is not None:
        if project.prisma_provider in PRISMA_PROVIDERS and any(i.module == "@prisma/client" for i in facts.imports):
            return PRISMA_PROVIDERS[project.prisma_provider]  # type: ignore[index]
        deps = set()
        for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
            if isinstance(project.package_json.get(section), dict):
                deps.update(project.package_json[section])
        systems = {str(by_import[d]) for d in deps if d in by_import}
        if len(systems) == 1:
            return systems.pop()
    return str(options.get("db_system_default", "other_sql"))


def operation_for(name: str) -> str | None:
    for pattern, op in OPERATION_BY_NAME:
        if re.search(pattern, name, re.I):
            return op
    return None


def literal_sql(pf: ParsedFile, fn: FunctionFact) -> str | None:
    node = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
    wrapper = find_wrapper(pf, node) if node is not None else None
    if wrapper is not None:  # already instrumented: look inside the wrapped body, not at our own attributes
        node = wrapper.child_by_field_name("arguments").named_children[-1].child_by_field_name("body")
    for s in captures_in(pf, _BODY, "s", node):
        if s.type == "template_string" and any(c.type == "template_substitution" for c in s.children):
            continue
        value = text(s)[1:-1]
        if _SQL.match(value):
            return value
    return None


def driver_operation(pf: ParsedFile, fn: FunctionFact) -> str | None:
    """The one driver method the body calls (`findOne`, `hset` -> `HSET`), else None."""
    node = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
    wrapper = find_wrapper(pf, node) if node is not None else None
    if wrapper is not None:
        node = wrapper.child_by_field_name("arguments").named_children[-1].child_by_field_name("body")
    if node is None:
        return None
    found = {text(m) for m in captures_in(pf, _BODY, "m", node) if text(m) in DRIVER_METHODS | REDIS_COMMANDS}
    if len(found) != 1:
        return None
    op = found.pop()
    return op.upper() if op in REDIS_COMMANDS else op


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    style = style_of(ctx, path)
    pf, facts = ctx.parsed[path], ctx.facts[path]
    options = dict(task.options)
    system = db_system(facts, options, ctx.project)

    def choose(fn: FunctionFact):  # noqa: ANN202
        q = style.quote
        extra: list[tuple[str, str, object]] = [("db.system.name", ts_string(system, q), system)]
        sql = literal_sql(pf, fn)
        op = None
        if sql is not None:
            op = _SQL.match(sql).group(1).upper()
            extra.append(("db.query.text", ts_string(" ".join(sql.split()), q), " ".join(sql.split())))
            table = _SQL_TABLE.search(sql)
            if table:
                extra.append(("db.collection.name", ts_string(table.group(1), q), table.group(1)))
        else:
            op = driver_operation(pf, fn)
            if op is None and fn.class_name and CLIENT_CLASS.search(fn.class_name):
                op = operation_for(fn.name)
            param = next((p.name for p in fn.params if p.name in COLLECTION_PARAMS), None)
            if param is not None:
                extra.append(("db.collection.name", param, f"<{param}>"))
        if op is not None:
            extra.append(("db.operation.name", ts_string(op, q), op))
        return make_spec(ctx, path, fn, style, WITH_CLIENT_SPAN, extra)

    return wrap_file(ctx, task, choose, total=True)  # (choose always names the span span_name)
