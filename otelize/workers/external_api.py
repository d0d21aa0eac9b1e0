"""External-API worker: CLIENT spans around outbound calls of in-house API clients.

The span is the logical operation (`PaymentAPI.charge`); the auto-instrumented
http/undici client span nests under it, so nothing is doubled. Attributes:
`server.address` (and `server.port` when explicit) from a literal base URL, and
`http.request.method` when the method's body names exactly one: a `method:`
property, a verb call on a client (`axios.post`), an upper-case verb passed to a
call (`this.request('POST', path)`), or a one-argument `fetch(url)` (GET). Two
different verbs in one body leave the attribute out rather than guess.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from otelize.synthesize.edits import WorkerResult
from otelize.analysis.records import FunctionFact
from otelize.analysis.capindex import captures_in, indexed
from otelize.analysis.parse import ParsedFile, text
from otelize.workers.base import Task, WorkerContext
from otelize.plan.registry import WITH_CLIENT_SPAN
from otelize.workers.spans import make_spec, style_of, wrap_file
from otelize.synthesize.wrap import ts_string

_URL = """((string (string_fragment) @url) (#match? @url "^https?://"))"""
_METHOD_PROP = """(pair key: (property_identifier) @k (#eq? @k "method") value: (string (string_fragment) @m))"""
_VERB_CALL = """(call_expression function: (member_expression
  object: [(identifier) (member_expression)] @client
  property: (property_identifier) @verb
  (#any-of? @verb "get" "post" "put" "patch" "delete" "head")
  (#match? @client "(?i)(axios|http|client|got|ky|request|superagent|api)$")))"""
_VERB_ARG = """(call_expression arguments: (arguments (string (string_fragment) @verb_arg)
  (#any-of? @verb_arg "GET" "POST" "PUT" "PATCH" "DELETE" "HEAD" "OPTIONS")))"""
# (`#any-of?` is tree-sitter's own and tested before the `#match?`, which calls back into
# Python for RE2: most member calls of a file fail the verb test and never get there)
_BARE_FETCH = """(call_expression function: [(identifier) @fetch
                                   (member_expression object: (identifier) @g property: (property_identifier) @fetch)]
  arguments: (arguments . (_) .)
  (#eq? @fetch "fetch"))"""
# One query for the file's URLs and every function's method question (a compile costs ~3 ms
# whatever its size; the capture names are distinct, see otelize.analysis.capindex).
_REQUEST = "\n".join((_URL, _METHOD_PROP, _VERB_CALL, _VERB_ARG, _BARE_FETCH))
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def base_urls(pf: ParsedFile) -> list[tuple[int, int, str]]:
    """(start, end, url) of literal http(s) URLs in the file."""
    return [(n.start_byte, n.end_byte, text(n)) for n in indexed(pf, _REQUEST, "url")[1]]


def request_method(pf: ParsedFile, fn: FunctionFact) -> str | None:
    node = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
    found: set[str] = set()
    for m in captures_in(pf, _REQUEST, "m", node):
        if text(m).upper() in HTTP_METHODS:
            found.add(text(m).upper())
    found.update(text(v).upper() for v in captures_in(pf, _REQUEST, "verb", node))
    found.update(text(m) for m in captures_in(pf, _REQUEST, "verb_arg", node))
    if captures_in(pf, _REQUEST, "fetch", node):
        found.add("GET")
    return found.pop() if len(found) == 1 else None


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    style = style_of(ctx, path)
    pf, facts = ctx.parsed[path], ctx.facts[path]
    options = dict(task.options)

    def url_for(fn: FunctionFact) -> str | None:
        if options.get("server_address"):
            return str(options["server_address"])
        urls = base_urls(pf)  # (the file's query runs on the first ask: an INTERNAL span asks none)
        cls = next((c for c in facts.classes if c.name == fn.class_name), None)
        if cls is not None:
            inside = [u for s, e, u in urls if cls.start <= s < cls.end]
            if inside:
                return inside[0]
        outside = [u for s, e, u in urls if not any(c.start <= s < c.end for c in facts.classes)]
        return outside[0] if len(set(outside)) == 1 else None

    def choose(fn: FunctionFact):  # noqa: ANN202
        q = style.quote
        extra: list[tuple[str, str, object]] = []
        url = url_for(fn)
        if url is not None:
            parts = urlsplit(url if "://" in url else "https://" + url)
            if parts.hostname:
                extra.append(("server.address", ts_string(parts.hostname, q), parts.hostname))
            if parts.port:
                extra.append(("server.port", str(parts.port), parts.port))
        method = request_method(pf, fn)
        if method:
            extra.append(("http.request.method", ts_string(method, q), method))
        return make_spec(ctx, path, fn, style, WITH_CLIENT_SPAN, extra)

    return wrap_file(ctx, task, choose, total=True)  # (choose always names the span span_name)
