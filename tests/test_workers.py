"""One before/after test per worker, all through tests/transform.py.

The helper also asserts, for every case, that each changed file reparses
cleanly and that a second run changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otelize.report.instrument import to_json
from otelize.workers.base import GENERATED_HEADER
from transform import ENTRY, assert_transform, default_package_json, run_transform, run_transform_result, source

OTEL_PACKAGES = {
    "@opentelemetry/api": "1.9.0",
    "@opentelemetry/instrumentation-express": "0.71.1",
    "@opentelemetry/instrumentation-http": "0.223.0",
    "@opentelemetry/resources": "2.12.0",
    "@opentelemetry/sdk-node": "0.223.0",
}


def spans_of(result, worker: str) -> dict[str, dict]:  # noqa: ANN001
    return {s["name"]: s for s in to_json(result)["spans"] if s["worker"] == worker}


# --- service -----------------------------------------------------------------------

SERVICE_BEFORE = """
    export class OrderService {
      private readonly items = new Map<string, number>();

      constructor(private readonly prefix: string) {}

      async createOrder(id: string): Promise<string> {
        const key = `${this.prefix}:${id}`;
        this.items.set(key, 1);
        return key;
      }

      count(): number {
        let n = 0;
        for (const v of this.items.values()) {
          n += v;
        }
        return n;
      }

      get size(): number {
        return this.items.size;
      }

      *keys(): Generator<string> {
        yield* this.items.keys();
      }

      find(id: number): string;
      find(id: string): string;
      find(id: string | number): string {
        const key = String(id);
        return `${this.prefix}:${key}`;
      }

      private secret(): number {
        const n = 1;
        return n + 1;
      }

      _internal(): number {
        const n = 2;
        return n * 2;
      }
    }

    export function totalOf(values: number[]): number {
      let sum = 0;
      for (const v of values) {
        sum += v;
      }
      return sum;
    }

    function localHelper(values: number[]): number {
      const first = values[0];
      return first ?? 0;
    }
"""

SERVICE_AFTER = """
    import { withSpan } from '../otel';
    export class OrderService {
      private readonly items = new Map<string, number>();

      constructor(private readonly prefix: string) {}

      async createOrder(id: string): Promise<string> {
        return withSpan<Promise<string>>('OrderService.createOrder', { 'code.file.path': 'src/services/orderService.ts', 'code.function.name': 'OrderService.createOrder' }, async () => {
          const key = `${this.prefix}:${id}`;
          this.items.set(key, 1);
          return key;
        });
      }

      count(): number {
        return withSpan<number>('OrderService.count', { 'code.file.path': 'src/services/orderService.ts', 'code.function.name': 'OrderService.count' }, () => {
          let n = 0;
          for (const v of this.items.values()) {
            n += v;
          }
          return n;
        });
      }

      get size(): number {
        return this.items.size;
      }

      *keys(): Generator<string> {
        yield* this.items.keys();
      }

      find(id: number): string;
      find(id: string): string;
      find(id: string | number): string {
        return withSpan<string>('OrderService.find', { 'code.file.path': 'src/services/orderService.ts', 'code.function.name': 'OrderService.find' }, () => {
          const key = String(id);
          return `${this.prefix}:${key}`;
        });
      }

      private secret(): number {
        const n = 1;
        return n + 1;
      }

      _internal(): number {
        const n = 2;
        return n * 2;
      }
    }

    export function totalOf(values: number[]): number {
      return withSpan<number>('totalOf', { 'code.file.path': 'src/services/orderService.ts', 'code.function.name': 'totalOf' }, () => {
        let sum = 0;
        for (const v of values) {
          sum += v;
        }
        return sum;
      });
    }

    function localHelper(values: number[]): number {
      const first = values[0];
      return first ?? 0;
    }
"""


def test_service_worker_wraps_public_methods_and_exported_functions(tmp_path: Path) -> None:
    path = "src/services/orderService.ts"
    result = assert_transform(tmp_path, {path: SERVICE_BEFORE}, {path: SERVICE_AFTER})

    spans = spans_of(result, "service")
    assert sorted(spans) == ["OrderService.count", "OrderService.createOrder", "OrderService.find", "totalOf"]
    assert {s["kind"] for s in spans.values()} == {"INTERNAL"}
    assert spans["OrderService.createOrder"]["line"] == 6
    assert spans["OrderService.createOrder"]["attributes"] == {
        "code.file.path": path,
        "code.function.name": "OrderService.createOrder",
    }

    skipped = {(s["symbol"], s["line"], s["reason"]) for s in to_json(result)["skipped"] if s["file"] == path}
    assert skipped == {
        ("OrderService.constructor", 4, "constructor"),
        ("OrderService.size", 20, "getter"),
        ("OrderService.keys", 24, "generator"),
        ("OrderService.find", 28, "overload signature (only the implementation is wrapped)"),
        ("OrderService.find", 29, "overload signature (only the implementation is wrapped)"),
        ("OrderService.secret", 35, "private member"),
        ("OrderService._internal", 40, "private member"),
        ("localHelper", 54, "module-internal helper (not exported)"),
    }


def test_service_worker_keeps_async_arrow_for_async_functions_only(tmp_path: Path) -> None:
    changed = run_transform(
        tmp_path,
        {
            "src/services/mathService.ts": """
                export async function slow(n: number): Promise<number> {
                  const doubled = n * 2;
                  return doubled;
                }

                export function fast(n: number): number {
                  const doubled = n * 2;
                  return doubled;
                }
            """
        },
    )
    text = changed["src/services/mathService.ts"].decode()
    assert "return withSpan<Promise<number>>('slow', { 'code.file.path': 'src/services/mathService.ts', 'code.function.name': 'slow' }, async () => {" in text
    assert "return withSpan<number>('fast', { 'code.file.path': 'src/services/mathService.ts', 'code.function.name': 'fast' }, () => {" in text


# --- database ----------------------------------------------------------------------


def test_database_worker_literal_sql_over_a_driver_without_auto_instrumentation(tmp_path: Path) -> None:
    # @neondatabase/serverless speaks postgres with no OpenTelemetry instrumentation below
    # it: the repository is the client boundary, so its spans are CLIENT spans
    path = "src/db/orderRepository.ts"
    before = """
        import { Pool } from '@neondatabase/serverless';

        const pool = new Pool();

        export class OrderRepository {
          async findOrder(id: string): Promise<unknown> {
            const result = await pool.query('SELECT * FROM orders WHERE id = $1', [id]);
            return result.rows[0];
          }

          async insertOrder(total: number): Promise<void> {
            await pool.query(`INSERT INTO
              order_lines (total) VALUES ($1)`, [total]);
          }
        }
    """
    after = """
        import { Pool } from '@neondatabase/serverless';
        import { withClientSpan } from '../otel';

        const pool = new Pool();

        export class OrderRepository {
          async findOrder(id: string): Promise<unknown> {
            return withClientSpan<Promise<unknown>>('OrderRepository.findOrder', { 'code.file.path': 'src/db/orderRepository.ts', 'code.function.name': 'OrderRepository.findOrder', 'db.collection.name': 'orders', 'db.operation.name': 'SELECT', 'db.query.text': 'SELECT * FROM orders WHERE id = $1', 'db.system.name': 'postgresql' }, async () => {
              const result = await pool.query('SELECT * FROM orders WHERE id = $1', [id]);
              return result.rows[0];
            });
          }

          async insertOrder(total: number): Promise<void> {
            return withClientSpan<Promise<void>>('OrderRepository.insertOrder', { 'code.file.path': 'src/db/orderRepository.ts', 'code.function.name': 'OrderRepository.insertOrder', 'db.collection.name': 'order_lines', 'db.operation.name': 'INSERT', 'db.query.text': 'INSERT INTO order_lines (total) VALUES ($1)', 'db.system.name': 'postgresql' }, async () => {
              await pool.query(`INSERT INTO
              order_lines (total) VALUES ($1)`, [total]);
            });
          }
        }
    """
    result = assert_transform(tmp_path, {path: before}, {path: after}, default_package_json(**{"@neondatabase/serverless": "0.10.4"}))
    spans = spans_of(result, "database")
    assert {s["kind"] for s in spans.values()} == {"CLIENT"}
    assert spans["OrderRepository.findOrder"]["attributes"]["db.system.name"] == "postgresql"
    assert spans["OrderRepository.insertOrder"]["attributes"]["db.query.text"] == "INSERT INTO order_lines (total) VALUES ($1)"


def test_database_worker_over_pg_gives_internal_spans(tmp_path: Path) -> None:
    # pg is auto-instrumented: its own CLIENT span nests below, so the repository's is INTERNAL
    path = "src/db/orderRepository.ts"
    before = """
        import { Pool } from 'pg';

        const pool = new Pool();

        export class OrderRepository {
          async findOrder(id: string): Promise<unknown> {
            const result = await pool.query('SELECT * FROM orders WHERE id = $1', [id]);
            return result.rows[0];
          }
        }
    """
    after = """
        import { Pool } from 'pg';
        import { withSpan } from '../otel';

        const pool = new Pool();

        export class OrderRepository {
          async findOrder(id: string): Promise<unknown> {
            return withSpan<Promise<unknown>>('OrderRepository.findOrder', { 'code.file.path': 'src/db/orderRepository.ts', 'code.function.name': 'OrderRepository.findOrder' }, async () => {
              const result = await pool.query('SELECT * FROM orders WHERE id = $1', [id]);
              return result.rows[0];
            });
          }
        }
    """
    result = assert_transform(tmp_path, {path: before}, {path: after}, default_package_json(pg="8.13.1"))
    assert {s["kind"] for s in spans_of(result, "database").values()} == {"INTERNAL"}


def test_an_internal_role_spares_the_workers_attribute_questions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # classification makes the pg repository's span INTERNAL, with no client attributes:
    # the database worker's choose (its SQL and driver questions) is not asked
    from otelize.workers import database

    asked: list[str] = []
    real = database.literal_sql
    monkeypatch.setattr(database, "literal_sql", lambda pf, fn: asked.append(fn.qualname) or real(pf, fn))
    path = "src/db/orderRepository.ts"
    before = """
        import { Pool } from 'pg';

        export class OrderRepository {
          async findOrder(id: string): Promise<unknown> {
            return (await new Pool().query('SELECT * FROM orders WHERE id = $1', [id])).rows[0];
          }
        }
    """
    _, result = run_transform_result(tmp_path, {path: before}, default_package_json(pg="8.13.1"))
    assert {n: s["kind"] for n, s in spans_of(result, "database").items()} == {"OrderRepository.findOrder": "INTERNAL"}
    assert asked == []
    # a driver otelize's SDK does not instrument: the CLIENT span's attributes are asked for
    (tmp_path / "b").mkdir()
    _, result = run_transform_result(tmp_path / "b", {path: before.replace("'pg'", "'better-sqlite3'")}, default_package_json())
    assert spans_of(result, "database")["OrderRepository.findOrder"]["kind"] == "CLIENT"
    assert asked


def test_database_worker_in_house_wrapper_uses_table_parameter(tmp_path: Path) -> None:
    path = "src/utils/database.ts"
    before = """
        export class Database {
          private readonly rows = new Map<string, unknown>();

          async findById(table: string, id: string): Promise<unknown> {
            const row = this.rows.get(`${table}:${id}`);
            return row;
          }

          async remove(table: string, id: string): Promise<boolean> {
            const deleted = this.rows.delete(`${table}:${id}`);
            return deleted;
          }
        }
    """
    after = """
        import { withClientSpan } from '../otel';
        export class Database {
          private readonly rows = new Map<string, unknown>();

          async findById(table: string, id: string): Promise<unknown> {
            return withClientSpan<Promise<unknown>>('Database.findById', { 'code.file.path': 'src/utils/database.ts', 'code.function.name': 'Database.findById', 'db.collection.name': table, 'db.operation.name': 'SELECT', 'db.system.name': 'other_sql' }, async () => {
              const row = this.rows.get(`${table}:${id}`);
              return row;
            });
          }

          async remove(table: string, id: string): Promise<boolean> {
            return withClientSpan<Promise<boolean>>('Database.remove', { 'code.file.path': 'src/utils/database.ts', 'code.function.name': 'Database.remove', 'db.collection.name': table, 'db.operation.name': 'DELETE', 'db.system.name': 'other_sql' }, async () => {
              const deleted = this.rows.delete(`${table}:${id}`);
              return deleted;
            });
          }
        }
    """
    result = assert_transform(tmp_path, {path: before}, {path: after})
    attrs = spans_of(result, "database")["Database.findById"]["attributes"]
    assert attrs["db.collection.name"] == "<table>"  # a parameter, not a literal
    assert "db.query.text" not in attrs


# --- cache -------------------------------------------------------------------------


def test_cache_worker_ioredis(tmp_path: Path) -> None:
    # ioredis is auto-instrumented (its CLIENT span carries db.system.name=redis): INTERNAL here
    path = "src/cache/redisCache.ts"
    before = """
        import Redis from 'ioredis';

        const redis = new Redis();

        export class RedisCache {
          async get(key: string): Promise<string | null> {
            const value = await redis.get(key);
            return value;
          }

          async set(key: string, value: string): Promise<void> {
            await redis.set(key, value);
          }

          async del(key: string): Promise<number> {
            const n = await redis.del(key);
            return n;
          }
        }
    """
    after = """
        import Redis from 'ioredis';
        import { withSpan } from '../otel';

        const redis = new Redis();

        export class RedisCache {
          async get(key: string): Promise<string | null> {
            return withSpan<Promise<string | null>>('RedisCache.get', { 'code.file.path': 'src/cache/redisCache.ts', 'code.function.name': 'RedisCache.get' }, async () => {
              const value = await redis.get(key);
              return value;
            });
          }

          async set(key: string, value: string): Promise<void> {
            return withSpan<Promise<void>>('RedisCache.set', { 'code.file.path': 'src/cache/redisCache.ts', 'code.function.name': 'RedisCache.set' }, async () => {
              await redis.set(key, value);
            });
          }

          async del(key: string): Promise<number> {
            return withSpan<Promise<number>>('RedisCache.del', { 'code.file.path': 'src/cache/redisCache.ts', 'code.function.name': 'RedisCache.del' }, async () => {
              const n = await redis.del(key);
              return n;
            });
          }
        }
    """
    result = assert_transform(tmp_path, {path: before}, {path: after}, default_package_json(ioredis="5.4.1"))
    spans = spans_of(result, "cache")
    assert sorted(spans) == ["RedisCache.del", "RedisCache.get", "RedisCache.set"]
    assert {s["kind"] for s in spans.values()} == {"INTERNAL"}


# --- external API ------------------------------------------------------------------


def test_external_api_client_over_fetch_gets_internal_spans(tmp_path: Path) -> None:
    path = "src/clients/paymentClient.ts"
    before = """
        export class PaymentClient {
          private readonly baseUrl = 'https://api.payments.example.com:8443/v1';

          async charge(amount: number): Promise<unknown> {
            const res = await fetch(`${this.baseUrl}/charges`, {
              method: 'POST',
              body: JSON.stringify({ amount }),
            });
            return res.json();
          }

          async status(id: string): Promise<unknown> {
            const res = await fetch(`${this.baseUrl}/charges/${id}`);
            return res.json();
          }
        }
    """
    after = """
        import { withSpan } from '../otel';
        export class PaymentClient {
          private readonly baseUrl = 'https://api.payments.example.com:8443/v1';

          async charge(amount: number): Promise<unknown> {
            return withSpan<Promise<unknown>>('PaymentClient.charge', { 'code.file.path': 'src/clients/paymentClient.ts', 'code.function.name': 'PaymentClient.charge' }, async () => {
              const res = await fetch(`${this.baseUrl}/charges`, {
                method: 'POST',
                body: JSON.stringify({ amount }),
              });
              return res.json();
            });
          }

          async status(id: string): Promise<unknown> {
            return withSpan<Promise<unknown>>('PaymentClient.status', { 'code.file.path': 'src/clients/paymentClient.ts', 'code.function.name': 'PaymentClient.status' }, async () => {
              const res = await fetch(`${this.baseUrl}/charges/${id}`);
              return res.json();
            });
          }
        }
    """
    result = assert_transform(tmp_path, {path: before}, {path: after})
    spans = spans_of(result, "external-api")
    # fetch goes through undici, which is auto-instrumented: its CLIENT span (with
    # server.address and http.request.method) nests below this INTERNAL one
    assert {s["kind"] for s in spans.values()} == {"INTERNAL"}


def test_external_api_reads_the_files_urls_only_for_a_client_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from otelize.workers import external_api

    asked: list[str] = []
    real = external_api.base_urls
    monkeypatch.setattr(external_api, "base_urls", lambda pf: asked.append(pf.path) or real(pf))
    path = "src/clients/rateClient.ts"
    before = """
        import axios from 'axios';

        export class RateClient {
          async rate(code: string): Promise<unknown> {
            return (await %s('https://rates.example.com/' + code)).data;
          }
        }
    """
    # fetch is auto-instrumented: an INTERNAL span, with no server.address to look for
    _, result = run_transform_result(tmp_path, {path: before % "fetch"})
    assert spans_of(result, "external-api")["RateClient.rate"]["kind"] == "INTERNAL"
    assert asked == []
    # axios, not a dependency of package.json: classification gives it a CLIENT span
    (tmp_path / "b").mkdir()
    _, result = run_transform_result(tmp_path / "b", {path: before % "axios.get"})
    span = spans_of(result, "external-api")["RateClient.rate"]
    assert (span["kind"], span["attributes"]["server.address"]) == ("CLIENT", "rates.example.com")
    assert asked


def test_external_api_method_from_a_verb_argument_and_never_guessed(tmp_path: Path) -> None:
    # `this.send('POST', ...)` names the verb; a body that names two verbs (or none) gets no attribute.
    path = "src/clients/shippingClient.ts"
    before = """
        export class ShippingClient {
          private readonly baseUrl = 'https://ship.example.com';

          async create(ref: string): Promise<string> {
            return this.send('POST', `/shipments/${ref}`);
          }

          async upsert(ref: string, exists: boolean): Promise<string> {
            return exists ? this.send('PUT', `/shipments/${ref}`) : this.send('POST', '/shipments');
          }

          async label(ref: string): Promise<string> {
            return this.send(ref.toUpperCase(), '/labels');
          }

          private async send(method: string, path: string): Promise<string> {
            return `${method} ${this.baseUrl}${path}`;
          }
        }
    """
    _, result = run_transform_result(tmp_path, {path: before})
    spans = spans_of(result, "external-api")
    assert spans["ShippingClient.create"]["attributes"]["http.request.method"] == "POST"
    assert "http.request.method" not in spans["ShippingClient.upsert"]["attributes"]
    assert "http.request.method" not in spans["ShippingClient.label"]["attributes"]


# --- http --------------------------------------------------------------------------


def test_http_worker_records_errors_in_error_middleware_only(tmp_path: Path) -> None:
    router = """
        import { Router } from 'express';

        export const ordersRouter = Router();

        ordersRouter.get('/orders', (req, res) => {
          const orders: string[] = [];
          res.json(orders);
        });

        export function listHandler(req: unknown, res: { json(v: unknown): void }): void {
          const rows: string[] = [];
          res.json(rows);
        }
    """
    handler_before = """
        import type { NextFunction, Request, Response } from 'express';

        export function errorHandler(err: Error, req: Request, res: Response, next: NextFunction): void {
          res.status(500).json({ error: err.message });
        }
    """
    handler_after = """
        import type { NextFunction, Request, Response } from 'express';
        import { recordActiveSpanError } from '../otel';

        export function errorHandler(err: Error, req: Request, res: Response, next: NextFunction): void {
          recordActiveSpanError(err);
          res.status(500).json({ error: err.message });
        }
    """
    entry = """
        import express from 'express';
        import { ordersRouter } from './routes/orders';
        import { errorHandler } from './middleware/errorHandler';

        const app = express();
        app.use(ordersRouter);
        app.use(errorHandler);
        app.listen(3000);
    """
    files = {"src/routes/orders.ts": router, "src/middleware/errorHandler.ts": handler_before, ENTRY: entry}
    result = assert_transform(
        tmp_path,
        files,
        {"src/middleware/errorHandler.ts": handler_after, ENTRY: b"import './tracing';\n" + source(entry)},
    )
    # no span per route handler: Express spans come from the auto-instrumentation
    assert [s for s in to_json(result)["spans"] if s["file"] == "src/routes/orders.ts"] == []
    assert [s for s in to_json(result)["spans"] if s["worker"] == "http"] == []


def test_http_worker_keeps_an_existing_record_call(tmp_path: Path) -> None:
    handler = """
        import type { NextFunction, Request, Response } from 'express';
        import { recordActiveSpanError } from '../otel';

        export function onError(error: Error, req: Request, res: Response, next: NextFunction): void {
          recordActiveSpanError(error);
          res.status(500).end();
        }
    """
    changed = run_transform(tmp_path, {"src/middleware/errors.ts": handler})
    assert "src/middleware/errors.ts" not in changed


# --- dependency --------------------------------------------------------------------


def test_dependency_worker_inserts_packages_in_sorted_position(tmp_path: Path) -> None:
    pkg = (
        b'{\n  "name": "tiny-app",\n  "version": "1.0.0",\n  "dependencies": {\n'
        b'    "@aws-sdk/client-s3": "3.600.0",\n    "@types/never": "1.0.0",\n'
        b'    "express": "4.22.3",\n    "zod": "3.23.8"\n  }\n}\n'
    )
    changed, result = run_transform_result(tmp_path, {}, pkg)
    expected = (
        b'{\n  "name": "tiny-app",\n  "version": "1.0.0",\n  "dependencies": {\n'
        b'    "@aws-sdk/client-s3": "3.600.0",\n'
        b'    "@opentelemetry/api": "1.9.0",\n'
        b'    "@opentelemetry/instrumentation-aws-sdk": "0.78.0",\n'
        b'    "@opentelemetry/instrumentation-express": "0.71.1",\n'
        b'    "@opentelemetry/instrumentation-http": "0.223.0",\n'
        b'    "@opentelemetry/resources": "2.12.0",\n'
        b'    "@opentelemetry/sdk-node": "0.223.0",\n'
        b'    "@types/never": "1.0.0",\n'
        b'    "express": "4.22.3",\n    "zod": "3.23.8"\n  }\n}\n'
    )
    assert changed["package.json"] == expected
    # the AWS SDK v3 client the app uses gets its instrumentation
    assert to_json(result)["packages"] == {**OTEL_PACKAGES, "@opentelemetry/instrumentation-aws-sdk": "0.78.0"}


# --- config ------------------------------------------------------------------------


def test_config_worker_creates_files_and_imports_tracing_first(tmp_path: Path) -> None:
    entry = """
        // The shop API.
        import express from 'express';
        import { helper } from './helper';

        const app = express();
        app.get('/', (req, res) => {
          res.send(helper());
        });
        app.listen(3000);
    """
    changed, result = run_transform_result(
        tmp_path, {ENTRY: entry, "src/helper.ts": "export const helper = (): string => 'hi';\n"}
    )
    assert sorted(to_json(result)["files"]["created"]) == ["src/otel.ts", "src/tracing.ts"]
    for created in ("src/otel.ts", "src/tracing.ts"):
        assert changed[created].startswith(GENERATED_HEADER)
    new_entry = changed[ENTRY].decode()
    assert new_entry == (
        "// The shop API.\n"
        "import './tracing';\n"
        "import express from 'express';\n"
        "import { helper } from './helper';\n"
        "\n"
        "const app = express();\n"
        "app.get('/', (req, res) => {\n"
        "  res.send(helper());\n"
        "});\n"
        "app.listen(3000);\n"
    )
    assert new_entry.count("./tracing") == 1
    pkg = json.loads(changed["package.json"])
    assert {k: v for k, v in pkg["dependencies"].items() if k.startswith("@opentelemetry/")} == OTEL_PACKAGES
    assert "src/helper.ts" not in changed


# --- database: db.system.name for ORMs and wrappers ------------------------------------

ORM_REPO = """
    import { PrismaClient } from '@prisma/client';
    const prisma = new PrismaClient();
    export async function findUser(id: string): Promise<unknown> {
      const user = await prisma.user.findUnique({ where: { id } });
      return user;
    }
"""
TYPEORM_REPO = """
    import { DataSource } from 'typeorm';
    export const source = new DataSource({ type: 'mysql' });
    export async function findOrder(id: string): Promise<unknown> {
      const order = await source.manager.findOneBy('orders', { id });
      return order;
    }
"""
SCHEMA = 'generator client {\n  provider = "prisma-client-js"\n}\n\ndatasource db {\n  provider = "%s"\n  url = env("DATABASE_URL")\n}\n'


@pytest.mark.parametrize(("provider", "system"), [
    ("postgresql", "postgresql"), ("sqlserver", "microsoft.sql_server"), ("mongodb", "mongodb"), ("nosuchdb", "other_sql"),
])
def test_database_system_of_prisma_comes_from_its_schema(tmp_path: Path, provider: str, system: str) -> None:
    files = {"src/repos/users.ts": ORM_REPO, "prisma/schema.prisma": SCHEMA % provider}
    _, result = run_transform_result(tmp_path, files, default_package_json(**{"@prisma/client": "5.22.0"}))
    assert spans_of(result, "database")["findUser"]["attributes"]["db.system.name"] == system


@pytest.mark.parametrize(("drivers", "kind", "system"), [
    ({"mysql2": "3.11.4"}, "INTERNAL", None),           # the ORM runs on an auto-instrumented driver
    ({"mysql2": "3.11.4", "pg": "8.13.1"}, "INTERNAL", None),
    ({}, "CLIENT", "other_sql"),                          # no driver known
])
def test_database_system_of_other_orms_comes_from_the_driver_dependency(tmp_path: Path, drivers: dict, kind: str, system: str | None) -> None:
    pkg = default_package_json(typeorm="0.3.20", **drivers)
    _, result = run_transform_result(tmp_path, {"src/repos/orders.ts": TYPEORM_REPO}, pkg)
    span = spans_of(result, "database")["findOrder"]
    assert span["kind"] == kind
    assert span["attributes"].get("db.system.name") == system


def test_service_worker_wraps_the_members_of_an_exported_object_literal(tmp_path: Path) -> None:
    path = "src/services/userService.ts"
    before = """
        const users = new Map<string, string>();

        const internal = {
          async load(id: string): Promise<string | undefined> {
            const name = users.get(id);
            return name;
          },
        };

        export const userService = {
          async find(id: string): Promise<string> {
            const name = await internal.load(id);
            return name ?? 'nobody';
          },
          create: async (name: string): Promise<string> => {
            const id = String(users.size + 1);
            users.set(id, name);
            return id;
          },
          _reset(): void {
            users.clear();
            users.set('0', 'root');
          },
          size: (): number => users.size,
        };
    """
    after = """
        import { withSpan } from '../otel';
        const users = new Map<string, string>();

        const internal = {
          async load(id: string): Promise<string | undefined> {
            const name = users.get(id);
            return name;
          },
        };

        export const userService = {
          async find(id: string): Promise<string> {
            return withSpan<Promise<string>>('userService.find', { 'code.file.path': 'src/services/userService.ts', 'code.function.name': 'userService.find' }, async () => {
              const name = await internal.load(id);
              return name ?? 'nobody';
            });
          },
          create: async (name: string): Promise<string> => {
            return withSpan<Promise<string>>('userService.create', { 'code.file.path': 'src/services/userService.ts', 'code.function.name': 'userService.create' }, async () => {
              const id = String(users.size + 1);
              users.set(id, name);
              return id;
            });
          },
          _reset(): void {
            users.clear();
            users.set('0', 'root');
          },
          size: (): number => users.size,
        };
    """
    result = assert_transform(tmp_path, {path: before}, {path: after})
    assert sorted(spans_of(result, "service")) == ["userService.create", "userService.find"]
    skips = {s["symbol"]: s["reason"] for s in to_json(result)["skipped"] if s["file"] == path}
    assert skips["userService._reset"] == "private member"
    assert "one-expression" in skips["userService.size"]
    assert "internal.load" not in skips  # not exported: not the service's API, silently left alone


def test_a_default_exported_object_literal_is_named_after_its_file(tmp_path: Path) -> None:
    path = "src/services/orderService.ts"
    before = """
        export default {
          async place(id: string): Promise<string> {
            const ref = `order-${id}`;
            return ref;
          },
        };
    """
    _, result = run_transform_result(tmp_path, {path: before})
    span = spans_of(result, "service")["orderService.place"]
    assert span["attributes"]["code.function.name"] == "orderService.place"
