"""Deterministic synthetic Express/TypeScript app generator (benchmarks and scale tests).

    python -m tests.bench.gen_app OUT_DIR --files N --seed S

`generate(out_dir, n_files, seed)` writes a complete app shaped like sample-app/
but bigger: for each of N domains one route, service, repository (pg), cache
(ioredis) and API client (fetch) file, plus package.json, tsconfig.json,
src/index.ts and src/middleware/errorHandler.ts. All randomness comes from
`random.Random(seed)`, so the same (n_files, seed) gives byte-identical output.
The code parses cleanly with tree-sitter; it is plausible TypeScript but is not
meant to be type-checked.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIXED_FILES = 4  # package.json, tsconfig.json, src/index.ts, src/middleware/errorHandler.ts
FILES_PER_DOMAIN = 5
MIN_LINES = 100
MAX_LINES = 300

BASE_DOMAINS = [
    "user", "order", "product", "invoice", "payment", "shipment", "customer", "review",
    "coupon", "warehouse", "supplier", "category", "cart", "refund", "subscription",
    "ticket", "notification", "account", "address", "report", "campaign", "vendor",
    "booking", "device",
]  # fmt: skip

EXTRA_FIELDS = [
    ("title", "string"), ("amount", "number"), ("currency", "string"), ("quantity", "number"),
    ("email", "string"), ("note", "string"), ("priority", "number"), ("region", "string"),
    ("ownerId", "string"), ("score", "number"), ("locale", "string"), ("version", "number"),
]  # fmt: skip

EXTRA_STATUSES = ["failed", "shipped", "cancelled", "draft", "completed", "suspended"]

COMMENTS = [
    "// Note: keep in sync with the upstream schema — see docs/@d@.md",
    "// Cache miss → fall back to the repository.",
    "// TODO(ops): tune this for the Zürich region.",
    "// 注意: results are ordered by creation time.",
    "// Idempotent: calling twice is harmless ✓",
    "// Les identifiants sont des UUID v4 (générés côté base).",
    "// Über-long names are rejected before they reach Postgres.",
    "// Keep this cheap: it runs on every request ⚡",
]

DOC_COMMENTS = [
    "/** @D@ lookups go through the cache first (TTL in seconds). */",
    "/**\n * Business rules for @d@ records.\n * Données validées avant écriture — never trust the client.\n */",
    "/** Thin domain layer: validation, caching and notifications. */",
    "/**\n * Handles @d@ workflows.\n * ⚠ Methods here may call the remote API.\n */",
]


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@dataclass
class Domain:
    d: str  # camelCase singular, also the route path segment and file stem
    fields: list[tuple[str, str]]
    statuses: list[str]
    exports_default_router: bool = True
    methods: list[str] = field(default_factory=list)

    @property
    def D(self) -> str:  # noqa: N802 - mirrors the @D@ placeholder
        return self.d[0].upper() + self.d[1:]

    @property
    def table(self) -> str:
        return _plural(_snake(self.d))

    def sub(self, text: str, **extra: str) -> str:
        out = (
            text.replace("@D@", self.D)
            .replace("@d@", self.d)
            .replace("@T@", self.table)
            .replace("@p@", _plural(self.d))
            .replace("@DU@", _snake(self.d).upper())
        )
        for key, value in extra.items():
            out = out.replace(f"@{key}@", value)
        return out


def _nlines(blocks: list[str]) -> int:
    return _join(blocks).count("\n")


def _join(blocks: list[str]) -> str:
    return "\n\n".join(b.rstrip("\n") for b in blocks) + "\n"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.split("\n"))


# ---------------------------------------------------------------------------
# top-level filler helpers (unique names via the index)

FILLERS = [
    r"""/** Human-readable labels (UI copy; some locales need non-ASCII). */
const @d@Labels@i@: Record<string, string> = {
  pending: 'En attente — pending',
  active: 'Aktiv ✓',
  archived: 'Archivé',
  failed: 'Fehlgeschlagen ✗',
};""",
    r"""function format@D@Amount@i@(value: number, currency = 'EUR'): string {
  if (!Number.isFinite(value)) {
    return '—';
  }
  const rounded = Math.round(value * 100) / 100;
  return `${rounded.toFixed(2)} ${currency}`;
}""",
    r"""function chunk@i@<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(items.slice(i, i + size));
  }
  return out;
}""",
    r"""// Exponential backoff with a little deterministic jitter.
function backoffDelay@i@(attempt: number, baseMs = 50): number {
  const jitter = (attempt * 7919) % 13;
  return Math.min(baseMs * 2 ** attempt + jitter, 5_000);
}""",
    r"""function describe@D@Context@i@(scope: string, details: Record<string, unknown>): string {
  const keys = Object.keys(details).sort();
  return `[@d@:${scope}]
  keys: ${keys.join(', ')}
  size: ${keys.length}`;
}""",
    r"""function isRecord@i@(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}""",
    r"""function severity@i@(code: number): 'info' | 'warn' | 'error' {
  switch (true) {
    case code >= 500:
      return 'error';
    case code >= 400:
      return 'warn';
    default:
      return 'info';
  }
}""",
    r"""interface @D@Metric@i@ {
  name: string;
  value: number;
  unit?: 'ms' | 'count' | 'bytes';
}

const @d@Metrics@i@: @D@Metric@i@[] = [];

function record@D@Metric@i@(name: string, value: number): void {
  @d@Metrics@i@.push({ name, value, unit: 'ms' });
  if (@d@Metrics@i@.length > 1000) {
    @d@Metrics@i@.splice(0, @d@Metrics@i@.length - 1000);
  }
}""",
    r"""/**
 * Normalises free text: trims, collapses whitespace, strips control characters.
 * « Garbage in, garbage out » — but at least tidy garbage.
 */
function normalizeText@i@(input: string, maxLength = 200): string {
  const collapsed = input.replace(/\s+/g, ' ').replace(/[\u0000-\u001f]/g, '').trim();
  return collapsed.length > maxLength ? `${collapsed.slice(0, maxLength - 1)}…` : collapsed;
}""",
]


def _fill(blocks_before: list[str], rest: list[str], dom: Domain, rng: random.Random, target: int) -> list[str]:
    """Append filler helpers to blocks_before until the whole file reaches target lines."""
    fillers: list[str] = []
    i = 1
    while _nlines(blocks_before + fillers + rest) < target:
        block = dom.sub(rng.choice(FILLERS), i=str(i))
        if _nlines(blocks_before + fillers + [block] + rest) > MAX_LINES:
            break
        fillers.append(block)
        i += 1
    return blocks_before + fillers + rest


def _check(path: str, text: str) -> str:
    n = text.count("\n")
    if not MIN_LINES <= n <= MAX_LINES:
        raise AssertionError(f"{path}: {n} lines, outside {MIN_LINES}-{MAX_LINES}")
    return text


# ---------------------------------------------------------------------------
# services

SERVICE_METHODS: dict[str, str] = {
    "get": r"""async get@D@(id: string): Promise<@D@> {
  const key = cacheKey(id);
  const cached = await this.cache.get<@D@>(key);
  if (cached !== null) {
    return cached;
  }
  const row = await this.repository.findById(id);
  if (row === null) {
    throw new @D@Error(`@d@ ${id} not found`, 404);
  }
  await this.cache.set(key, row, CACHE_TTL_SECONDS);
  return row;
}""",
    "list": r"""async list@D@s(options: ListOptions): Promise<Page<@D@>> {
  const limit = Math.min(Math.max(1, options.limit), MAX_PAGE_SIZE);
  const offset = Math.max(0, options.offset);
  const [rows, total] = await Promise.all([
    this.repository.list(limit, offset, options.status),
    this.repository.count(options.status),
  ]);
  const items: @D@[] = [];
  for (const row of rows) {
    if (row.status === 'archived' && options.status !== 'archived') {
      continue;
    }
    items.push(row);
  }
  return { items, total, limit, offset };
}""",
    "create": r"""async create@D@(input: @D@Input): Promise<@D@> {
  if (input.name.length > MAX_NAME_LENGTH) {
    throw new @D@Error(`name is too long (max ${MAX_NAME_LENGTH} characters)`);
  }
  let created: @D@;
  try {
    created = await this.repository.insert({ ...input, status: input.status ?? 'pending' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes('duplicate key')) {
      throw new @D@Error(`a @d@ named "${input.name}" already exists`, 409);
    }
    throw err;
  }
  await this.cache.set(cacheKey(created.id), created, CACHE_TTL_SECONDS);
  await this.client.notify('@d@.created', { id: created.id, name: created.name });
  return created;
}""",
    "update": r"""async update@D@(id: string, patch: Partial<@D@Input>): Promise<@D@> {
  const existing = await this.repository.findById(id);
  if (existing === null) {
    throw new @D@Error(`@d@ ${id} not found`, 404);
  }
  if (patch.status !== undefined && !is@D@Status(patch.status)) {
    throw new @D@Error(`invalid status «${String(patch.status)}»`);
  }
  const updated = await this.repository.update(id, {
    ...patch,
    updatedAt: new Date().toISOString(),
  });
  await this.cache.del(cacheKey(id));
  return updated;
}""",
    "delete": r"""async delete@D@(id: string): Promise<boolean> {
  const removed = await this.repository.delete(id);
  await this.cache.del(cacheKey(id));
  if (removed) {
    await this.client.notify('@d@.deleted', { id });
  }
  return removed;
}""",
    "search": r"""async search@D@s(term: string, limit = 20): Promise<@D@[]> {
  const needle = term.trim().toLowerCase();
  if (needle.length < 2) {
    throw new @D@Error('search term must have at least 2 characters');
  }
  const rows = await this.repository.search(`%${needle}%`, Math.min(limit, MAX_PAGE_SIZE));
  const ranked = rows
    .map((row) => ({ row, score: row.name.toLowerCase().startsWith(needle) ? 2 : 1 }))
    .sort((a, b) => b.score - a.score || a.row.name.localeCompare(b.row.name));
  const description = `search "${needle}"
  matched: ${ranked.length}
  limit:   ${limit}`;
  console.debug(description);
  return ranked.map((entry) => entry.row);
}""",
    "sync": r"""async sync@D@s(since?: string): Promise<{ imported: number; failed: number }> {
  const remote = await this.client.fetchRemote(since);
  let imported = 0;
  let failed = 0;
  for (const item of remote) {
    try {
      const status = is@D@Status(item.status) ? item.status : 'pending';
      await this.repository.upsertMany([{ name: item.name, status }]);
      await this.cache.del(cacheKey(item.id));
      imported += 1;
    } catch (err) {
      failed += 1;
      console.warn(`sync of @d@ ${item.id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { imported, failed };
}""",
    "summarize": r"""async summarize@D@s(): Promise<@D@Summary> {
  const counts = await this.repository.countByStatus();
  let total = 0;
  for (const value of Object.values(counts)) {
    total += value;
  }
  const report = `@D@ report — ${new Date().toISOString()}
total: ${total}
${Object.entries(counts)
  .map(([status, count]) => `  • ${status}: ${count}`)
  .join('\n')}`;
  return { total, counts, report };
}""",
    "bulk": r"""async bulkUpdate@D@Status(ids: string[], status: string): Promise<number> {
  if (!is@D@Status(status)) {
    throw new @D@Error(`unknown status: ${status}`);
  }
  const distinct = [...new Set(ids.filter((id) => id.length > 0))];
  let changed = 0;
  for (let i = 0; i < distinct.length; i += BATCH_SIZE) {
    const batch = distinct.slice(i, i + BATCH_SIZE);
    changed += await this.repository.updateStatus(batch, status);
    await Promise.all(batch.map((id) => this.cache.del(cacheKey(id))));
  }
  return changed;
}""",
    "validate": r"""async validate@D@(body: unknown): Promise<{ valid: boolean; problems: string[] }> {
  const problems: string[] = [];
  try {
    const input = parse@D@Input(body);
    if (input.name.length > MAX_NAME_LENGTH) {
      problems.push(`name exceeds ${MAX_NAME_LENGTH} characters`);
    }
    const clash = await this.repository.search(input.name, 1);
    if (clash.length > 0) {
      problems.push(`name «${input.name}» is already taken`);
    }
  } catch (err) {
    problems.push(err instanceof Error ? err.message : 'invalid input');
  }
  return { valid: problems.length === 0, problems };
}""",
    "archive": r"""async archive@D@(id: string): Promise<@D@> {
  const row = await this.repository.findById(id);
  if (row === null) {
    throw new @D@Error(`@d@ ${id} not found`, 404);
  }
  if (row.status === 'archived') {
    return row;
  }
  const archived = await this.repository.update(id, {
    status: 'archived',
    updatedAt: new Date().toISOString(),
  });
  await this.cache.del(cacheKey(id));
  await this.client.notify('@d@.archived', { id, previous: row.status });
  return archived;
}""",
    "refresh": r"""async refresh@D@(id: string): Promise<@D@> {
  const verified = await this.client.verify(id);
  if (!verified) {
    throw new @D@Error(`@d@ ${id} could not be verified upstream`, 502);
  }
  const row = await this.repository.findById(id);
  if (row === null) {
    throw new @D@Error(`@d@ ${id} vanished after verification`, 404);
  }
  await this.cache.set(cacheKey(id), row, CACHE_TTL_SECONDS);
  return row;
}""",
}

METHOD_DOCS = [
    "/** Read-through cache lookup. */",
    "/** Validates first, then writes — never the other way round. */",
    "// Errors bubble up to the Express error handler (→ JSON response).",
    "/**\n * Part of the public @d@ API.\n * Durée typique: < 20 ms with a warm cache.\n */",
]


def gen_service(dom: Domain, rng: random.Random) -> str:
    ttl = rng.choice([60, 120, 300, 600, 900])
    page = rng.choice([50, 100, 200])
    name_len = rng.choice([80, 100, 120, 160])
    batch = rng.choice([25, 50, 100])
    statuses = " | ".join(f"'{s}'" for s in dom.statuses)
    extras_opt = "\n".join(f"  {n}?: {t};" for n, t in dom.fields)
    head = [
        dom.sub(
            r"""import { @d@Repository, @D@Repository } from '../repositories/@d@Repository';
import type { @D@Record, @D@Status } from '../repositories/@d@Repository';
import { @d@Cache, @D@Cache } from '../cache/@d@Cache';
import { @d@Client, @D@Client } from '../clients/@d@Client';"""
        ),
        dom.sub(
            r"""export type { @D@Status };

export type @D@ = @D@Record;

export interface @D@Input {
  name: string;
  status?: @D@Status;
@EXTRAS@
}

export interface ListOptions {
  limit: number;
  offset: number;
  status?: @D@Status;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface @D@Summary {
  total: number;
  counts: Record<string, number>;
  report: string;
}""",
            EXTRAS=extras_opt,
        ),
        dom.sub(
            r"""export class @D@Error extends Error {
  constructor(
    message: string,
    readonly status: number = 400,
  ) {
    super(message);
    this.name = '@D@Error';
  }
}"""
        ),
        dom.sub(
            r"""@COMMENT@
const STATUSES: readonly @D@Status[] = [@STATUSES@];
const CACHE_TTL_SECONDS = @TTL@;
const MAX_PAGE_SIZE = @PAGE@;
const MAX_NAME_LENGTH = @NAMELEN@;
const BATCH_SIZE = @BATCH@;""",
            COMMENT=dom.sub(rng.choice(COMMENTS)),
            STATUSES=statuses.replace(" | ", ", "),
            TTL=str(ttl),
            PAGE=str(page),
            NAMELEN=str(name_len),
            BATCH=str(batch),
        ),
        dom.sub(
            r"""function cacheKey(id: string): string {
  return `@d@:${id}`;
}

export function is@D@Status(value: unknown): value is @D@Status {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

export function parse@D@Input(body: unknown): @D@Input {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new @D@Error('request body must be a JSON object');
  }
  const { name, status } = body as Record<string, unknown>;
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new @D@Error('name must be a non-empty string (Name darf nicht leer sein)');
  }
  if (status !== undefined && !is@D@Status(status)) {
    throw new @D@Error(`status must be one of ${STATUSES.join(', ')}`);
  }
  return { ...(body as Partial<@D@Input>), name: name.trim(), status: status as @D@Status | undefined };
}"""
        ),
    ]
    class_open = dom.sub(
        rng.choice(DOC_COMMENTS)
        + r"""
export class @D@Service {
  constructor(
    private readonly repository: @D@Repository,
    private readonly cache: @D@Cache,
    private readonly client: @D@Client,
  ) {}"""
    )
    singleton = dom.sub("export const @d@Service = new @D@Service(@d@Repository, @d@Cache, @d@Client);")

    n_methods = rng.randint(4, 10)
    kinds = list(SERVICE_METHODS)
    rng.shuffle(kinds)
    methods: list[str] = []
    chosen: list[str] = []

    def assemble(ms: list[str]) -> list[str]:
        body = class_open + "\n" + "\n\n".join(ms) + "\n}"
        return [body, singleton]

    for kind in kinds:
        if len(chosen) >= n_methods:
            break
        text = SERVICE_METHODS[kind]
        if rng.random() < 0.45:
            text = rng.choice(METHOD_DOCS) + "\n" + text
        block = _indent(dom.sub(text), 2)
        if len(chosen) >= 4 and _nlines(head + assemble(methods + [block])) > MAX_LINES - 10:
            break
        methods.append(block)
        chosen.append(kind)
    dom.methods = chosen
    target = rng.randint(110, 280)
    return _join(_fill(head, assemble(methods), dom, rng, target))


# ---------------------------------------------------------------------------
# routes

ROUTE_SPECS: dict[str, tuple[str, str, list[str], str, int]] = {
    "get": ("get", "/:id", ["const id = requireId(req.params.id);"], "get@D@(id)", 200),
    "list": ("get", "/", ["const options = parseListOptions(req.query);"], "list@D@s(options)", 200),
    "create": ("post", "/", ["const input = parse@D@Input(req.body);"], "create@D@(input)", 201),
    "update": (
        "patch",
        "/:id",
        ["const id = requireId(req.params.id);", "const patch = asPatch(req.body);"],
        "update@D@(id, patch)",
        200,
    ),
    "delete": ("delete", "/:id", ["const id = requireId(req.params.id);"], "delete@D@(id)", 204),
    "search": (
        "get",
        "/search",
        ["const term = typeof req.query.q === 'string' ? req.query.q : '';", "const limit = toInt(req.query.limit, 20);"],
        "search@D@s(term, limit)",
        200,
    ),
    "sync": (
        "post",
        "/sync",
        ["const since = typeof req.query.since === 'string' ? req.query.since : undefined;"],
        "sync@D@s(since)",
        202,
    ),
    "summarize": ("get", "/summary", [], "summarize@D@s()", 200),
    "bulk": (
        "post",
        "/bulk-status",
        [
            "const body = isRecord(req.body) ? req.body : {};",
            "const ids = Array.isArray(body.ids) ? body.ids.map(String) : [];",
            "const status = typeof body.status === 'string' ? body.status : '';",
        ],
        "bulkUpdate@D@Status(ids, status)",
        200,
    ),
    "validate": ("post", "/validate", [], "validate@D@(req.body)", 200),
    "archive": ("post", "/:id/archive", ["const id = requireId(req.params.id);"], "archive@D@(id)", 200),
    "refresh": ("post", "/:id/refresh", ["const id = requireId(req.params.id);"], "refresh@D@(id)", 200),
}


def _route_block(dom: Domain, kind: str, rng: random.Random) -> str:
    verb, path, pre, call, status = ROUTE_SPECS[kind]
    if status == 204:
        respond = ["await @d@Service.CALL;", "res.status(204).end();"]
    elif status == 200:
        respond = ["const result = await @d@Service.CALL;", "res.json(result);"]
    else:
        respond = ["const result = await @d@Service.CALL;", f"res.status({status}).json(result);"]
    if rng.random() < 0.3:
        respond.insert(1, "res.setHeader('X-@D@-Route', '@KIND@');")
    body = [line.replace("CALL", call) for line in pre + respond]
    comment = f"// {verb.upper()} /api/@d@{'' if path == '/' else path} — {kind}"
    if rng.random() < 0.5:
        inner = "\n".join("    " + b for b in body)
        text = f"""{comment}
router.{verb}('{path}', async (req: Request, res: Response, next: NextFunction) => {{
  try {{
{inner}
  }} catch (err) {{
    next(err);
  }}
}});"""
    else:
        inner = "\n".join("    " + b for b in body)
        text = f"""{comment}
router.{verb}(
  '{path}',
  wrap(async (req, res) => {{
{inner}
  }}),
);"""
    return dom.sub(text, KIND=kind)


def gen_routes(dom: Domain, rng: random.Random) -> str:
    k = rng.randint(3, min(6, len(dom.methods)))
    kinds = rng.sample(dom.methods, k)
    kinds.sort(key=lambda kd: (":" in ROUTE_SPECS[kd][1], ROUTE_SPECS[kd][1], ROUTE_SPECS[kd][0]))
    head = [
        dom.sub(
            r"""import { Router } from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { @d@Service, is@D@Status, parse@D@Input } from '../services/@d@Service';
import type { @D@Input, ListOptions } from '../services/@d@Service';"""
        ),
        dom.sub(
            r"""// Routes for /api/@d@ — thin HTTP layer, all logic lives in @d@Service.
const router = Router();

const DEFAULT_LIMIT = @LIMIT@;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;""",
            LIMIT=str(rng.choice([10, 20, 25, 50])),
        ),
        dom.sub(
            r"""interface HttpError extends Error {
  status: number;
}

type AsyncRoute = (req: Request, res: Response) => Promise<void>;

function httpError(message: string, status = 400): HttpError {
  const err = new Error(message) as HttpError;
  err.status = status;
  return err;
}

function wrap(route: AsyncRoute): RequestHandler {
  return (req, res, next) => {
    route(req, res).catch(next);
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireId(raw: string | undefined): string {
  if (raw === undefined || !ID_PATTERN.test(raw)) {
    throw httpError(`invalid @d@ id: ${String(raw)}`);
  }
  return raw;
}

function toInt(raw: unknown, fallback: number): number {
  const value = typeof raw === 'string' ? Number.parseInt(raw, 10) : Number.NaN;
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

function parseListOptions(query: Request['query']): ListOptions {
  const status = is@D@Status(query.status) ? query.status : undefined;
  return {
    limit: toInt(query.limit, DEFAULT_LIMIT),
    offset: toInt(query.offset, 0),
    status,
  };
}

function asPatch(body: unknown): Partial<@D@Input> {
  if (!isRecord(body)) {
    throw httpError('PATCH body must be a JSON object (objet JSON attendu)');
  }
  return body as Partial<@D@Input>;
}"""
        ),
    ]
    routes = [_route_block(dom, kind, rng) for kind in kinds]
    export = "export default router;" if dom.exports_default_router else dom.sub("export const @d@Router = router;")
    target = rng.randint(105, 260)
    return _join(_fill(head, routes + [export], dom, rng, target))


# ---------------------------------------------------------------------------
# repositories

REPO_OPTIONAL = {
    "exists": r"""async exists(id: string): Promise<boolean> {
  const rows = await this.query<{ found: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM @T@ WHERE id = $1) AS found',
    [id],
  );
  return rows[0]?.found === true;
}""",
    "findByName": r"""async findByName(name: string): Promise<@D@Record | null> {
  const rows = await this.query<@D@Record>(
    'SELECT @COLS@ FROM @T@ WHERE lower(name) = lower($1) LIMIT 1',
    [name],
  );
  return rows[0] ?? null;
}""",
    "purgeArchived": r"""// Hard-deletes archived rows older than N days (nightly job — läuft um 03:00).
async purgeArchived(olderThanDays: number): Promise<number> {
  const result = await this.pool.query(
    "DELETE FROM @T@ WHERE status = 'archived' AND updated_at < now() - ($1 || ' days')::interval",
    [olderThanDays],
  );
  return result.rowCount ?? 0;
}""",
    "recent": r"""async recent(limit = 10): Promise<@D@Record[]> {
  const sql = `
    SELECT @COLS@
    FROM @T@
    WHERE created_at > now() - interval '1 day'
    ORDER BY created_at DESC
    LIMIT $1`;
  return this.query<@D@Record>(sql, [limit]);
}""",
}


def gen_repository(dom: Domain, rng: random.Random) -> str:
    extra_cols = "".join(
        f", {_snake(n)}" if _snake(n) == n else f', {_snake(n)} AS "{n}"' for n, _ in dom.fields
    )
    cols = 'id, name, status' + extra_cols + ', created_at AS "createdAt", updated_at AS "updatedAt"'
    statuses = " | ".join(f"'{s}'" for s in dom.statuses)
    fields_req = "\n".join(f"  {n}: {t};" for n, t in dom.fields)
    fields_opt = "\n".join(f"  {n}?: {t};" for n, t in dom.fields)
    colmap = "\n".join(f"  {n}: '{_snake(n)}'," for n, _ in dom.fields)
    insert_cols = ", ".join(["name", "status"] + [_snake(n) for n, _ in dom.fields])
    placeholders = ", ".join(f"${i + 1}" for i in range(2 + len(dom.fields)))
    insert_params = ", ".join(["values.name", "values.status"] + [f"values.{n} ?? null" for n, _ in dom.fields])

    def s(text: str) -> str:
        return dom.sub(
            text,
            COLS=cols,
            STATUSES=statuses,
            FIELDS=fields_req,
            FIELDSOPT=fields_opt,
            COLMAP=colmap,
            INSCOLS=insert_cols,
            PH=placeholders,
            INSPARAMS=insert_params,
            SLOW=str(rng.choice([100, 200, 250, 500])),
            MAX=str(rng.choice([5, 10, 20])),
        )

    head = [
        s(
            r"""import { Pool } from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';"""
        ),
        s(
            r"""export type @D@Status = @STATUSES@;

export interface @D@Record {
  id: string;
  name: string;
  status: @D@Status;
@FIELDS@
  createdAt: string;
  updatedAt: string;
}

export interface New@D@ {
  name: string;
  status: @D@Status;
@FIELDSOPT@
}

export type @D@Patch = Partial<Omit<@D@Record, 'id' | 'createdAt'>>;"""
        ),
        s(
            r"""@COMMENT@
const SLOW_QUERY_MS = @SLOW@;

// camelCase property → snake_case column; anything else is ignored by update().
const COLUMN_MAP: Record<string, string> = {
  name: 'name',
  status: 'status',
@COLMAP@
  updatedAt: 'updated_at',
};""".replace("@COMMENT@", dom.sub(rng.choice(COMMENTS)))
        ),
    ]
    core = [
        r"""private async query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const started = Date.now();
  const result = await this.pool.query<R>(sql, params);
  const elapsed = Date.now() - started;
  if (elapsed > SLOW_QUERY_MS) {
    console.warn(`slow query on @T@ (${elapsed} ms): ${sql.slice(0, 80)}`);
  }
  return result.rows;
}""",
        r"""async withTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await this.pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}""",
        r"""async findById(id: string): Promise<@D@Record | null> {
  const rows = await this.query<@D@Record>('SELECT @COLS@ FROM @T@ WHERE id = $1', [id]);
  return rows[0] ?? null;
}""",
        r"""async list(limit: number, offset: number, status?: @D@Status): Promise<@D@Record[]> {
  if (status !== undefined) {
    return this.query<@D@Record>(
      'SELECT @COLS@ FROM @T@ WHERE status = $1 ORDER BY created_at DESC LIMIT $2 OFFSET $3',
      [status, limit, offset],
    );
  }
  return this.query<@D@Record>('SELECT @COLS@ FROM @T@ ORDER BY created_at DESC LIMIT $1 OFFSET $2', [
    limit,
    offset,
  ]);
}""",
        r"""async count(status?: @D@Status): Promise<number> {
  const rows =
    status === undefined
      ? await this.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM @T@')
      : await this.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM @T@ WHERE status = $1', [status]);
  return rows[0]?.n ?? 0;
}""",
        r"""async insert(values: New@D@): Promise<@D@Record> {
  const rows = await this.query<@D@Record>(
    'INSERT INTO @T@ (@INSCOLS@) VALUES (@PH@) RETURNING @COLS@',
    [@INSPARAMS@],
  );
  return rows[0];
}""",
        r"""async update(id: string, patch: @D@Patch): Promise<@D@Record> {
  const assignments: string[] = [];
  const params: unknown[] = [id];
  for (const [key, value] of Object.entries(patch)) {
    const column = COLUMN_MAP[key];
    if (column === undefined || value === undefined) {
      continue;
    }
    params.push(value);
    assignments.push(`${column} = $${params.length}`);
  }
  const rows = await this.query<@D@Record>(
    `UPDATE @T@ SET ${assignments.join(', ') || 'updated_at = now()'} WHERE id = $1 RETURNING @COLS@`,
    params,
  );
  if (rows.length === 0) {
    throw new Error(`@d@ ${id} not found`);
  }
  return rows[0];
}""",
        r"""async delete(id: string): Promise<boolean> {
  const result = await this.pool.query('DELETE FROM @T@ WHERE id = $1', [id]);
  return (result.rowCount ?? 0) > 0;
}""",
        r"""async search(pattern: string, limit: number): Promise<@D@Record[]> {
  const sql = `
    SELECT @COLS@
    FROM @T@
    WHERE name ILIKE $1
    ORDER BY updated_at DESC
    LIMIT $2`;
  return this.query<@D@Record>(sql, [pattern, limit]);
}""",
        r"""async updateStatus(ids: string[], status: @D@Status): Promise<number> {
  if (ids.length === 0) {
    return 0;
  }
  const result = await this.pool.query(
    'UPDATE @T@ SET status = $1, updated_at = now() WHERE id = ANY($2::uuid[])',
    [status, ids],
  );
  return result.rowCount ?? 0;
}""",
        r"""async countByStatus(): Promise<Record<string, number>> {
  const rows = await this.query<{ status: string; count: number }>(
    'SELECT status, COUNT(*)::int AS count FROM @T@ GROUP BY status ORDER BY status',
  );
  const counts: Record<string, number> = {};
  for (const row of rows) {
    counts[row.status] = row.count;
  }
  return counts;
}""",
        r"""async upsertMany(items: New@D@[]): Promise<number> {
  return this.withTransaction(async (client) => {
    let written = 0;
    for (const item of items) {
      await client.query(
        'INSERT INTO @T@ (name, status) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status, updated_at = now()',
        [item.name, item.status],
      );
      written += 1;
    }
    return written;
  });
}""",
    ]
    optional = list(REPO_OPTIONAL)
    rng.shuffle(optional)
    optional = optional[: rng.randint(0, len(optional))]
    class_open = s("/** Postgres access for the @T@ table. */\nexport class @D@Repository {\n  constructor(private readonly pool: Pool) {}")
    singleton = s(
        r"""export const @d@Repository = new @D@Repository(
  new Pool({
    connectionString: process.env.DATABASE_URL ?? 'postgres://localhost:5432/app',
    max: @MAX@,
  }),
);"""
    )
    methods = [_indent(s(m), 2) for m in core]

    def assemble(ms: list[str]) -> list[str]:
        return [class_open + "\n" + "\n\n".join(ms) + "\n}", singleton]

    for name in optional:
        block = _indent(s(REPO_OPTIONAL[name]), 2)
        if _nlines(head + assemble(methods + [block])) <= MAX_LINES - 20:
            methods.append(block)
    target = rng.randint(110, 280)
    return _join(_fill(head, assemble(methods), dom, rng, target))


# ---------------------------------------------------------------------------
# caches

CACHE_OPTIONAL = [
    r"""async getMany<T>(ids: string[]): Promise<Map<string, T>> {
  const found = new Map<string, T>();
  if (ids.length === 0) {
    return found;
  }
  const raws = await this.redis.mget(...ids.map((id) => this.key(id)));
  raws.forEach((raw, index) => {
    const value = decode<T>(raw);
    if (value !== null) {
      found.set(ids[index], value);
    }
  });
  return found;
}""",
    r"""// Read-through helper: loader runs only on a miss (« cache-aside »).
async remember<T>(id: string, ttlSeconds: number, loader: () => Promise<T>): Promise<T> {
  const cached = await this.get<T>(id);
  if (cached !== null) {
    return cached;
  }
  const value = await loader();
  await this.set(id, value, ttlSeconds);
  return value;
}""",
    r"""async clear(): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 100);
    cursor = next;
    if (keys.length > 0) {
      removed += await this.redis.del(...keys);
    }
  } while (cursor !== '0');
  return removed;
}""",
    r"""async touch(id: string, ttlSeconds = DEFAULT_TTL_SECONDS): Promise<boolean> {
  const updated = await this.redis.expire(this.key(id), ttlSeconds);
  return updated === 1;
}""",
    r"""snapshot(): Readonly<CacheStats> {
  const total = this.stats.hits + this.stats.misses;
  const ratio = total === 0 ? 0 : this.stats.hits / total;
  console.debug(`@d@ cache hit ratio ${(ratio * 100).toFixed(1)} %`);
  return { ...this.stats };
}""",
]


def gen_cache(dom: Domain, rng: random.Random) -> str:
    def s(text: str) -> str:
        return dom.sub(text, TTL=str(rng.choice([30, 60, 300, 3600])), V=str(rng.randint(1, 4)))

    head = [
        "import { Redis } from 'ioredis';",
        s(
            r"""const DEFAULT_TTL_SECONDS = @TTL@;
const PREFIX = '@d@:v@V@';""".replace("@COMMENT@", "")
        ),
        dom.sub(rng.choice(COMMENTS))
        + r"""
interface CacheStats {
  hits: number;
  misses: number;
  errors: number;
}

function encode(value: unknown): string {
  return JSON.stringify(value);
}

function decode<T>(raw: string | null): T | null {
  if (raw === null) {
    return null;
  }
  try {
    return JSON.parse(raw) as T;
  } catch (err) {
    console.warn(`discarding undecodable cache entry: ${String(err)}`);
    return null;
  }
}""",
    ]
    core = [
        r"""private key(id: string): string {
  return `${this.prefix}:${id}`;
}""",
        r"""async get<T>(id: string): Promise<T | null> {
  try {
    const raw = await this.redis.get(this.key(id));
    const value = decode<T>(raw);
    if (value === null) {
      this.stats.misses += 1;
    } else {
      this.stats.hits += 1;
    }
    return value;
  } catch (err) {
    this.stats.errors += 1;
    console.warn(`cache get failed for @d@ ${id}: ${String(err)}`);
    return null;
  }
}""",
        r"""async set(id: string, value: unknown, ttlSeconds = DEFAULT_TTL_SECONDS): Promise<void> {
  if (ttlSeconds <= 0) {
    await this.del(id);
    return;
  }
  await this.redis.set(this.key(id), encode(value), 'EX', ttlSeconds);
}""",
        r"""async del(id: string): Promise<void> {
  await this.redis.del(this.key(id));
}""",
    ]
    optional = CACHE_OPTIONAL[:]
    rng.shuffle(optional)
    optional = optional[: rng.randint(1, len(optional))]
    class_open = dom.sub(
        r"""/** Redis-backed cache for @d@ records (JSON values, per-key TTL). */
export class @D@Cache {
  private readonly stats: CacheStats = { hits: 0, misses: 0, errors: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string = PREFIX,
  ) {}"""
    )
    singleton = dom.sub(
        r"""export const @d@Cache = new @D@Cache(
  new Redis(process.env.REDIS_URL ?? 'redis://localhost:6379', { lazyConnect: true }),
);"""
    )
    methods = [_indent(s(m), 2) for m in core + optional]
    body = [class_open + "\n" + "\n\n".join(methods) + "\n}", singleton]
    target = rng.randint(105, 240)
    return _join(_fill(head, body, dom, rng, target))


# ---------------------------------------------------------------------------
# API clients

CLIENT_OPTIONAL = [
    r"""async health(): Promise<boolean> {
  try {
    const result = await this.request<{ status: string }>('/health', { attempts: 1 });
    return result.status === 'ok';
  } catch (err) {
    console.warn(`@d@ API health check failed: ${String(err)}`);
    return false;
  }
}""",
    r"""async fetchOne(id: string): Promise<Remote@D@ | null> {
  try {
    return await this.request<Remote@D@>(`/v1/@p@/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof @D@ClientError && err.status === 404) {
      return null;
    }
    throw err;
  }
}""",
    r"""// Pushes in batches so a single request never exceeds the upstream 1 MB limit.
async pushBatch(items: Remote@D@[], batchSize = 50): Promise<number> {
  let pushed = 0;
  for (let i = 0; i < items.length; i += batchSize) {
    const batch = items.slice(i, i + batchSize);
    await this.request<unknown>('/v1/@p@/batch', { method: 'POST', body: { items: batch } });
    pushed += batch.length;
  }
  return pushed;
}""",
]


def gen_client(dom: Domain, rng: random.Random) -> str:
    def s(text: str) -> str:
        return dom.sub(
            text,
            TIMEOUT=str(rng.choice([2000, 3000, 5000, 10000])),
            ATTEMPTS=str(rng.choice([2, 3, 4])),
        )

    head = [
        dom.sub(
            r"""// HTTP client for the @d@ upstream API (global fetch, Node ≥ 20).
export interface Remote@D@ {
  id: string;
  name: string;
  status: string;
  updatedAt: string;
}

interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  attempts?: number;
}

export class @D@ClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = '@D@ClientError';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}"""
        ),
    ]
    core = [
        r"""private async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const attempts = options.attempts ?? this.maxAttempts;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await fetch(`${this.baseUrl}${path}`, {
        method: options.method ?? 'GET',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.apiKey}`,
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
      });
      if (response.status >= 500) {
        lastError = new @D@ClientError(`upstream ${response.status} on ${path}`, response.status);
        await sleep(attempt * 100);
        continue;
      }
      if (!response.ok) {
        throw new @D@ClientError(`request to ${path} failed with ${response.status}`, response.status);
      }
      return (await response.json()) as T;
    } catch (err) {
      if (err instanceof @D@ClientError && err.status < 500) {
        throw err;
      }
      lastError = err;
    } finally {
      clearTimeout(timer);
    }
  }
  throw lastError instanceof Error ? lastError : new Error(`request to ${path} failed`);
}""",
        r"""async fetchRemote(since?: string): Promise<Remote@D@[]> {
  const query = since === undefined ? '' : `?since=${encodeURIComponent(since)}`;
  const page = await this.request<{ items: Remote@D@[] }>(`/v1/@p@${query}`);
  return page.items.filter((item) => item.id.length > 0 && item.name.length > 0);
}""",
        r"""async notify(event: string, payload: Record<string, unknown>): Promise<void> {
  await this.request<unknown>('/v1/events', {
    method: 'POST',
    body: { event, payload, sentAt: new Date().toISOString() },
  });
}""",
        r"""async verify(id: string): Promise<boolean> {
  try {
    const result = await this.request<{ valid: boolean }>(`/v1/@p@/${encodeURIComponent(id)}/verify`, {
      attempts: 1,
    });
    return result.valid;
  } catch (err) {
    if (err instanceof @D@ClientError && err.status === 404) {
      return false;
    }
    throw err;
  }
}""",
    ]
    optional = CLIENT_OPTIONAL[:]
    rng.shuffle(optional)
    optional = optional[: rng.randint(0, len(optional))]
    class_open = s(
        r"""export class @D@Client {
  private readonly baseUrl = 'https://@d@.example.com';
  private readonly timeoutMs = @TIMEOUT@;
  private readonly maxAttempts = @ATTEMPTS@;

  constructor(private readonly apiKey: string = process.env.@DU@_API_KEY ?? '') {}"""
    )
    methods = [_indent(dom.sub(m), 2) for m in core + optional]
    body = [class_open + "\n" + "\n\n".join(methods) + "\n}", dom.sub("export const @d@Client = new @D@Client();")]
    target = rng.randint(105, 260)
    return _join(_fill(head, body, dom, rng, target))


# ---------------------------------------------------------------------------
# app-level files


def gen_index(domains: list[Domain]) -> str:
    imports = ["import express from 'express';", "import { errorHandler } from './middleware/errorHandler';"]
    mounts = []
    for dom in domains:
        if dom.exports_default_router:
            imports.append(dom.sub("import @d@Router from './routes/@d@';"))
        else:
            imports.append(dom.sub("import { @d@Router } from './routes/@d@';"))
        mounts.append(dom.sub("app.use('/api/@d@', @d@Router);"))
    blocks = [
        "\n".join(imports),
        "const app = express();\n\napp.disable('x-powered-by');\napp.use(express.json({ limit: '1mb' }));",
        "app.get('/health', (_req, res) => {\n  res.json({ status: 'ok' });\n});",
        "\n".join(mounts),
        r"""app.use((req, res) => {
  res.status(404).json({ error: { message: `route ${req.method} ${req.path} not found` } });
});

app.use(errorHandler);""",
        r"""const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => {
  console.log(`synthetic-app listening on http://127.0.0.1:${port} (${process.env.NODE_ENV ?? 'development'})`);
});

export { app };""",
    ]
    return _join(blocks)


ERROR_HANDLER = r"""import type { NextFunction, Request, Response } from 'express';

interface HttpError extends Error {
  status?: number;
}

function statusOf(err: unknown): number {
  if (err instanceof Error && typeof (err as HttpError).status === 'number') {
    return (err as HttpError).status ?? 500;
  }
  return 500;
}

/** Last middleware: maps thrown errors to a JSON body (4xx keep their message). */
export function errorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  const status = statusOf(err);
  const message = status < 500 && err instanceof Error ? err.message : 'internal server error';
  if (status >= 500) {
    console.error(`unhandled error on ${req.method} ${req.originalUrl}:`, err);
  }
  res.status(status).json({ error: { message } });
}
"""


def gen_package_json() -> str:
    pkg = {
        "name": "synthetic-app",
        "version": "1.0.0",
        "private": True,
        "description": "Synthetic Express + TypeScript app generated for otelize benchmarks",
        "main": "dist/index.js",
        "scripts": {"build": "tsc -p tsconfig.json", "start": "node dist/index.js"},
        "dependencies": {"express": "4.22.3", "ioredis": "5.4.1", "pg": "8.13.1"},
        "devDependencies": {
            "@types/express": "4.17.25",
            "@types/node": "20.19.43",
            "@types/pg": "8.11.10",
            "typescript": "5.9.3",
        },
    }
    return json.dumps(pkg, indent=2, ensure_ascii=False) + "\n"


def gen_tsconfig() -> str:
    cfg = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "commonjs",
            "lib": ["ES2022"],
            "outDir": "dist",
            "rootDir": "src",
            "strict": True,
            "esModuleInterop": True,
            "skipLibCheck": True,
            "forceConsistentCasingInFileNames": True,
        },
        "include": ["src"],
    }
    return json.dumps(cfg, indent=2) + "\n"


# ---------------------------------------------------------------------------


def domain_count(n_files: int) -> int:
    return max(1, round((n_files - FIXED_FILES) / FILES_PER_DOMAIN))


def _domain_names(n: int, rng: random.Random) -> list[str]:
    base = BASE_DOMAINS[:]
    rng.shuffle(base)
    names = []
    for i in range(n):
        round_, idx = divmod(i, len(base))
        names.append(base[idx] if round_ == 0 else f"{base[idx]}{round_ + 1}")
    return names


def generate(out_dir: Path, n_files: int, seed: int = 0) -> dict:
    """Write a synthetic app of about n_files files to out_dir; return {files, lines, bytes}."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    domains: list[Domain] = []
    for name in _domain_names(domain_count(n_files), rng):
        fields = rng.sample(EXTRA_FIELDS, rng.randint(1, 4))
        statuses = ["pending", "active", "archived"] + rng.sample(EXTRA_STATUSES, rng.randint(0, 2))
        domains.append(Domain(name, fields, statuses, exports_default_router=rng.random() < 0.6))

    files: dict[str, str] = {
        "package.json": gen_package_json(),
        "tsconfig.json": gen_tsconfig(),
        "src/middleware/errorHandler.ts": ERROR_HANDLER,
    }
    for dom in domains:
        # service first: the route file exposes a subset of its methods
        service = gen_service(dom, rng)
        d = dom.d
        files[f"src/services/{d}Service.ts"] = _check(d + "Service", service)
        files[f"src/routes/{d}.ts"] = _check(d + " routes", gen_routes(dom, rng))
        files[f"src/repositories/{d}Repository.ts"] = _check(d + "Repository", gen_repository(dom, rng))
        files[f"src/cache/{d}Cache.ts"] = _check(d + "Cache", gen_cache(dom, rng))
        files[f"src/clients/{d}Client.ts"] = _check(d + "Client", gen_client(dom, rng))
    files["src/index.ts"] = gen_index(domains)

    total_lines = total_bytes = 0
    for rel in sorted(files):
        data = files[rel].encode("utf-8")
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total_lines += data.count(b"\n")
        total_bytes += len(data)
    return {"files": len(files), "lines": total_lines, "bytes": total_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.gen_app", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--files", type=int, default=100, help="approximate number of files (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be positive")
    summary = generate(args.out_dir, args.files, args.seed)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
