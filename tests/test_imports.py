"""The import step: one import edit per file, in the file's own style."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelize.synthesize.edits import ImportRequest, apply_edits
from otelize.synthesize.imports import import_edits
from otelize.analysis.parse import parse_source
from transform import ENTRY, run_transform, source

PATH = "src/services/a.ts"


def named(*names: str, module: str = "../otel", worker: str = "service") -> ImportRequest:
    return ImportRequest(PATH, module, names, False, worker)


def side_effect(module: str = "./tracing") -> ImportRequest:
    return ImportRequest(PATH, module, (), True, "config")


def add_imports(src: str | bytes, requests: list[ImportRequest]) -> tuple[bytes, list]:
    pf = parse_source(PATH, source(src))
    edits, skips = import_edits(pf, requests)
    assert len(edits) <= 2  # at most one insertion and one merge per file
    out = apply_edits(pf.source, edits)
    assert parse_source(PATH, out).ok
    return out, skips


def test_names_are_merged_into_an_existing_import() -> None:
    out, skips = add_imports(
        """
        import { a } from '../otel';
        import x from 'y';

        x(a);
        """,
        [named("withSpan"), named("withClientSpan", worker="database"), named("a")],
    )
    assert out == source(
        """
        import { a, withClientSpan, withSpan } from '../otel';
        import x from 'y';

        x(a);
        """
    )
    assert skips == []


def test_nothing_to_add_makes_no_edit() -> None:
    pf = parse_source(PATH, b"import { withSpan } from '../otel';\nwithSpan('a', {}, () => 1);\n")
    assert import_edits(pf, [named("withSpan")]) == ([], [])


def test_type_only_import_is_not_merged_into() -> None:
    out, _ = add_imports("import type { Attributes } from '../otel';\nconst a = 1;\n", [named("withSpan")])
    assert out == b"import type { Attributes } from '../otel';\nimport { withSpan } from '../otel';\nconst a = 1;\n"


def test_new_import_goes_after_the_last_import_line() -> None:
    out, _ = add_imports(
        """
        // header comment
        import express from 'express';
        import {
          a,
          b,
        } from './z';

        const q = a + b;
        """,
        [named("withSpan")],
    )
    assert out == source(
        """
        // header comment
        import express from 'express';
        import {
          a,
          b,
        } from './z';
        import { withSpan } from '../otel';

        const q = a + b;
        """
    )


def test_import_after_last_import_without_trailing_newline() -> None:
    out, _ = add_imports(b"import x from 'y';", [named("withSpan")])
    assert out == b"import x from 'y';\nimport { withSpan } from '../otel';\n"


def test_no_imports_goes_at_the_first_statement() -> None:
    out, _ = add_imports(
        """
        // Licensed under MIT.

        export const q = 1;
        """,
        [named("withSpan")],
    )
    assert out == b"// Licensed under MIT.\n\nimport { withSpan } from '../otel';\nexport const q = 1;\n"


def test_side_effect_import_becomes_first_statement_after_shebang_and_comments() -> None:
    out, skips = add_imports(
        """
        #!/usr/bin/env node
        // the entry point
        import express from 'express';

        express();
        """,
        [side_effect(), named("withSpan")],
    )
    assert out == source(
        """
        #!/usr/bin/env node
        // the entry point
        import './tracing';
        import express from 'express';
        import { withSpan } from '../otel';

        express();
        """
    )
    assert skips == []


def test_side_effect_and_named_import_in_a_file_without_imports() -> None:
    out, _ = add_imports("const q = 1;\n", [side_effect(), named("withSpan")])
    assert out == b"import './tracing';\nimport { withSpan } from '../otel';\nconst q = 1;\n"


def test_side_effect_import_already_first_is_not_duplicated() -> None:
    pf = parse_source(PATH, b"// entry\nimport './tracing';\nimport x from 'y';\n")
    assert import_edits(pf, [side_effect(), side_effect()]) == ([], [])


@pytest.mark.parametrize(("before", "after"), [
    # moved as written (quotes, semicolon) above everything, never duplicated
    ("import x from 'y';\nimport \"./tracing\"\nconst a = x;\n", "import \"./tracing\"\nimport x from 'y';\nconst a = x;\n"),
    # the last line of a file without a final newline
    ("import x from 'y';\nimport './tracing';", "import './tracing';\nimport x from 'y';"),
    # CRLF
    ("import x from 'y';\r\nimport './tracing';\r\nx();\r\n", "import './tracing';\r\nimport x from 'y';\r\nx();\r\n"),
])
def test_side_effect_import_not_first_is_moved_to_the_top(before: str, after: str) -> None:
    out, skips = add_imports(before, [side_effect(), side_effect()])
    assert out == after.encode() and skips == []


def test_side_effect_import_sharing_its_line_is_reported_not_moved() -> None:
    pf = parse_source(PATH, b"import x from 'y';\nimport './tracing'; x();\n")
    edits, skips = import_edits(pf, [side_effect()])
    assert edits == []
    assert len(skips) == 1 and "not the first statement" in skips[0].reason and skips[0].line == 2


def test_double_quotes_and_no_semicolons_are_respected() -> None:
    out, _ = add_imports('import x from "y"\n\nconst a = x\n', [side_effect(), named("withSpan")])
    assert out == b'import "./tracing"\nimport x from "y"\nimport { withSpan } from "../otel"\n\nconst a = x\n'


def test_semicolon_style_of_multiline_imports() -> None:
    semi, _ = add_imports("import {\n  a,\n} from 'z';\nconst q = a;\n", [named("withSpan")])
    assert semi == b"import {\n  a,\n} from 'z';\nimport { withSpan } from '../otel';\nconst q = a;\n"
    bare, _ = add_imports("import {\n  a,\n} from 'z'\nconst q = a\n", [named("withSpan")])
    assert bare == b"import {\n  a,\n} from 'z'\nimport { withSpan } from '../otel'\nconst q = a\n"


def test_crlf_file_gets_crlf_imports() -> None:
    out, _ = add_imports(b"import x from 'y';\r\n\r\nx();\r\n", [side_effect(), named("withSpan")])
    assert out == b"import './tracing';\r\nimport x from 'y';\r\nimport { withSpan } from '../otel';\r\n\r\nx();\r\n"
    assert out.count(b"\n") == out.count(b"\r\n")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("import express from 'express';\nconst app = express();\napp.listen(1);\n", "import './tracing';\nimport express from 'express';\nconst app = express();\napp.listen(1);\n"),
        ('import express from "express"\nconst app = express()\napp.listen(1)\n', 'import "./tracing"\nimport express from "express"\nconst app = express()\napp.listen(1)\n'),
        (
            "#!/usr/bin/env node\n/* entry */\nimport express from 'express';\nconst app = express();\napp.listen(1);\n",
            "#!/usr/bin/env node\n/* entry */\nimport './tracing';\nimport express from 'express';\nconst app = express();\napp.listen(1);\n",
        ),
    ],
)
def test_entry_gets_tracing_import_first_end_to_end(tmp_path: Path, entry: str, expected: str) -> None:
    changed = run_transform(tmp_path, {ENTRY: entry.encode()})
    assert changed[ENTRY].decode() == expected


def test_new_import_does_not_detach_a_comment_from_the_first_declaration() -> None:
    """With no imports, the helper import goes above a JSDoc / ts directive attached to the
    first declaration, never between them (a `// @ts-expect-error` would apply to the import)."""
    from otelize.synthesize.edits import ImportRequest, apply_edits
    from otelize.synthesize.imports import import_edits
    from otelize.analysis.parse import parse_source

    src = (
        b"// License header\n"
        b"\n"
        b"/** The answer. */\n"
        b"// @ts-expect-error: deliberately wrong\n"
        b"export const answer: number = 'forty-two';\n"
    )
    pf = parse_source("src/services/a.ts", src)
    edits, skips = import_edits(pf, [ImportRequest("src/services/a.ts", "../otel", ("withSpan",))])
    out = apply_edits(src, edits)
    assert skips == []
    assert out == (
        b"// License header\n"
        b"\n"
        b"import { withSpan } from '../otel';\n"
        b"/** The answer. */\n"
        b"// @ts-expect-error: deliberately wrong\n"
        b"export const answer: number = 'forty-two';\n"
    )
    assert parse_source("src/services/a.ts", out).ok


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    ("before", "requests", "after"),
    [
        (b"const x = 1;\n", [named("withSpan")], b"import { withSpan } from '../otel';\nconst x = 1;\n"),
        (b"// header\nconst x = 1;\n", [side_effect()], b"import './tracing';\n// header\nconst x = 1;\n"),
        (b"import a from 'a';\na();\n", [side_effect(), named("withSpan")],
         b"import './tracing';\nimport a from 'a';\nimport { withSpan } from '../otel';\na();\n"),
        (b"import a from 'a';\nimport './tracing';\na();\n", [side_effect()], b"import './tracing';\nimport a from 'a';\na();\n"),
    ],
    ids=["no-imports", "side-effect-above-comment", "after-imports", "moved-to-top"],
)
def test_a_byte_order_mark_stays_the_first_bytes(before: bytes, requests: list[ImportRequest], after: bytes) -> None:
    """#11.4: imports go after a BOM, never before it (it would then sit mid-file)."""
    out, skips = add_imports(BOM + before, requests)
    assert skips == []
    assert out == BOM + after
    assert out.count(BOM) == 1


# --- a leading .env load: the tracing import goes after it ---------------------------------

def side_effect_require(module: str = "./tracing") -> ImportRequest:
    return ImportRequest(PATH, module, (), True, "config", require=True)


@pytest.mark.parametrize(("head", "rest"), [
    ("import 'dotenv/config';\n", "import express from 'express';\n"),
    ("import dotenv from 'dotenv';\ndotenv.config();\n", "import express from 'express';\n"),
    ("import * as dotenv from 'dotenv';\ndotenv.config({ path: '.env.local' });\n", "import express from 'express';\n"),
    ("import { config as loadEnv } from 'dotenv';\nloadEnv(); // the settings\n", "import express from 'express';\n"),
    ("import 'reflect-metadata';\nimport 'dotenv/config';\n", "import express from 'express';\n"),
    ("import 'dotenv/config';\n", "/** the app */\nimport express from 'express';\n"),
])
def test_the_tracing_import_goes_after_a_leading_env_load(head: str, rest: str) -> None:
    out, skips = add_imports(head + rest, [side_effect()])
    assert out == (head + "import './tracing';\n" + rest).encode()
    assert skips == []
    again, _ = add_imports(out, [side_effect()])  # a second run finds it in place
    assert again == out


@pytest.mark.parametrize("code", [
    "import express from 'express';\nimport 'dotenv/config';\n",         # express is loaded first
    "import dotenv from 'dotenv';\nimport express from 'express';\ndotenv.config();\n",
    "import 'dotenv/config'; import express from 'express';\n",           # one line: nowhere in between
    "import type { DotenvConfigOutput } from 'dotenv';\nimport express from 'express';\n",
    "import dotenv from 'dotenv';\nimport express from 'express';\n",     # bound, never loaded
])
def test_no_leading_env_load_keeps_the_tracing_import_first(code: str) -> None:
    out, _ = add_imports(code, [side_effect()])
    assert out == b"import './tracing';\n" + code.encode()


@pytest.mark.parametrize("head", [
    "require('dotenv').config();\n",
    "require('dotenv/config');\n",
    "const dotenv = require('dotenv');\ndotenv.config({ path: '.env' });\n",
    "const { config } = require('dotenv');\nconfig();\n",
    "const env = require('dotenv').config();\n",
])
def test_commonjs_requires_tracing_after_a_leading_env_load(head: str) -> None:
    rest = "const express = require('express');\n"
    out, _ = add_imports("'use strict';\n" + head + rest, [side_effect_require(), ImportRequest(PATH, "../otel", ("withSpan",), False, "service", require=True)])
    assert out == ("'use strict';\n" + head + "require('./tracing');\n" + rest + "const { withSpan } = require('../otel');\n").encode()
    again, _ = add_imports(out, [side_effect_require(), ImportRequest(PATH, "../otel", ("withSpan",), False, "service", require=True)])
    assert again == out


def test_an_entry_instrumented_before_keeps_its_tracing_import_first() -> None:
    code = "import './tracing';\nimport 'dotenv/config';\nimport express from 'express';\n"
    assert add_imports(code, [side_effect()])[0] == code.encode()
