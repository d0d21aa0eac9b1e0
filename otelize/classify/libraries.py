"""libraries: what otelize knows about an app's npm libraries.

Which libraries do I/O, which the auto-instrumentations already trace (and the
ORMs covered through their driver), the `db.system` of each database or cache
client, the libraries of each span category, the loggers, pure globals and
startup names the roles ignore; and the app's dependencies by library name.
"""

from __future__ import annotations

import re
from typing import Any

# Libraries whose calls are I/O (a call through one of them is real work).
IO_LIBRARIES = frozenset({
    "pg", "pg-pool", "postgres", "mysql", "mysql2", "mongodb", "mongoose", "@prisma/client", "typeorm", "kysely",
    "drizzle-orm", "knex", "sequelize", "sequelize-typescript", "better-sqlite3", "sqlite3", "sqlite", "mssql", "tedious",
    "oracledb", "@neondatabase/serverless", "@planetscale/database", "@mikro-orm/core", "objection", "cassandra-driver",
    "redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs",
    "axios", "node-fetch", "undici", "got", "superagent", "ky", "request", "cross-fetch", "isomorphic-fetch",
    "amqplib", "amqp-connection-manager", "kafkajs", "bullmq", "bull", "bee-queue", "kue", "agenda",
    "nodemailer", "@sendgrid/mail", "mailgun.js", "mailgun-js", "stripe", "twilio", "@elastic/elasticsearch",
    "@google-cloud/pubsub", "@google-cloud/storage", "firebase-admin", "aws-sdk", "@aws-sdk",
})

# Auto-instrumentations-node covers these (database/cache drivers, messaging, and every
# client that goes over node's http/undici). An ORM is covered when the driver below it is.
AUTO_INSTRUMENTED = frozenset({
    "pg", "pg-pool", "mysql", "mysql2", "mongodb", "mongoose", "ioredis", "redis", "@redis/client", "tedious", "mssql",
    "oracledb", "cassandra-driver", "memcached", "knex", "amqplib", "kafkajs", "aws-sdk", "@aws-sdk",
    "axios", "node-fetch", "undici", "got", "superagent", "request", "cross-fetch", "isomorphic-fetch", "ky",
    "@elastic/elasticsearch", "@upstash/redis", "@google-cloud/pubsub", "@google-cloud/storage", "stripe", "twilio",
    "@sendgrid/mail", "mailgun.js", "mailgun-js",
})
ORMS = frozenset({"typeorm", "sequelize", "sequelize-typescript", "kysely", "drizzle-orm", "@mikro-orm/core", "objection", "knex"})
INSTRUMENTED_DRIVERS = frozenset({"pg", "pg-pool", "mysql", "mysql2", "mongodb", "tedious", "mssql", "oracledb"})

DB_SYSTEMS = {
    "pg": "postgresql", "pg-pool": "postgresql", "postgres": "postgresql", "@neondatabase/serverless": "postgresql",
    "mysql": "mysql", "mysql2": "mysql", "@planetscale/database": "mysql", "mongodb": "mongodb", "mongoose": "mongodb",
    "better-sqlite3": "sqlite", "sqlite3": "sqlite", "sqlite": "sqlite", "mssql": "microsoft.sql_server",
    "tedious": "microsoft.sql_server", "oracledb": "oracle.db", "cassandra-driver": "cassandra",
    "redis": "redis", "ioredis": "redis", "@redis/client": "redis", "@upstash/redis": "redis",
    "memcached": "memcached", "memjs": "memcached", "@elastic/elasticsearch": "elasticsearch",
}

PURE_ROOTS = frozenset({
    "console", "Math", "JSON", "Object", "Array", "Number", "String", "Boolean", "Date", "Reflect", "Symbol", "Map",
    "Set", "RegExp", "Error", "Buffer", "parseInt", "parseFloat", "isNaN", "structuredClone", "encodeURIComponent",
    "decodeURIComponent", "Promise",
})
# What a class field holds when its declared type or its `new` is one of these: an in-memory
# value of the language, so a call on it (`this.states.get(key)`) is no I/O.
BUILTIN_VALUE_TYPES = frozenset({
    "Map", "Set", "WeakMap", "WeakSet", "Array", "ReadonlyArray", "ReadonlyMap", "ReadonlySet", "Date", "RegExp",
    "URLSearchParams",
})
LOGGERS = frozenset({"logger", "Logger", "log", "console", "debug", "Log", "winston"})
DI_LOOKUPS = frozenset({"get", "resolve", "getInstance"})
# A parameter that hands the function a dependency (`findById(id, postRepository)`, `{ userService }`,
# `repo: OrderRepository`): a call on it goes to another layer's I/O, as a call on `this.repository` does.
# (Not `*Model`: `userModel.toJSON()` on a document handed in is no I/O.)
DEPENDENCY_PARAM = re.compile(
    r"(?:^|[a-z0-9_])(?:Repository|Repo|Service|Client|Gateway|Dao|DAO|Db|DB)$"
    r"|^(?:repository|repo|service|client|gateway|dao|db)$"
)
DEPENDENCY_TYPE = re.compile(r"^[A-Z][\w$]*(?:Repository|Repo|Service|Client|Gateway|Dao|DAO)$")
STARTUP_NAME = re.compile(r"^(connect|disconnect|init|initialize|bootstrap|setup|listen|mount|configure|start|stop|shutdown)([A-Z_0-9]|$)")
STARTUP_CLASS = re.compile(r"(Factory|Config|Configurer|Loader|Bootstrap|Module|App|Application|Server|Kernel)$")
STARTUP_FOLDERS = frozenset({"loaders", "loader", "bootstrap", "startup", "boot", "config", "configs"})
DB_LIBRARIES = frozenset(DB_SYSTEMS) - {"redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs"} | {
    "@prisma/client", "typeorm", "kysely", "drizzle-orm", "knex", "sequelize", "sequelize-typescript", "@mikro-orm/core", "objection",
}
CACHE_LIBRARIES = frozenset({"redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs"})
HTTP_LIBRARIES = frozenset({"axios", "node-fetch", "undici", "got", "superagent", "ky", "request", "cross-fetch", "isomorphic-fetch"})
CATEGORY_LIBRARIES = {"database": DB_LIBRARIES, "cache": CACHE_LIBRARIES, "external-api": HTTP_LIBRARIES}


def dependencies(package_json: dict[str, Any]) -> frozenset[str]:
    deps: set[str] = set()
    for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        if isinstance(package_json.get(section), dict):
            deps.update(lib_name(str(d)) for d in package_json[section])
    return frozenset(deps)


def instrumented_libraries(package_json: dict[str, Any]) -> frozenset[str]:
    """The app's dependencies whose calls auto-instrumentation already traces as CLIENT spans.

    The one place that says so (the dependencies issue may later supply the list of
    active instrumentations; swap it in here)."""
    deps = set(dependencies(package_json))
    found = {d for d in deps if d in AUTO_INSTRUMENTED or d.startswith("@aws-sdk/")}
    if deps & INSTRUMENTED_DRIVERS:
        found |= deps & ORMS
    return frozenset(found)


def lib_name(module: str) -> str:
    """`mysql2/promise` -> `mysql2`, `@aws-sdk/client-s3` -> `@aws-sdk`."""
    if module.startswith("@aws-sdk/"):
        return "@aws-sdk"
    parts = module.split("/")
    return "/".join(parts[:2]) if module.startswith("@") else parts[0]
