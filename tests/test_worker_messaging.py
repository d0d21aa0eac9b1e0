"""The messaging worker on tests/fixtures/classify/queues: a CONSUMER span around each
bullmq and agenda handler, an INTERNAL one inside the kafkajs/amqplib instrumentation's
CONSUMER span; a PRODUCER span around each function that adds a job to a bullmq, bull or
kue queue of its file, an INTERNAL one around a kafkajs send (the instrumentation makes
the PRODUCER span); a second run changes nothing and strip gives the bytes back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otelize.api import instrument
from otelize.stripping.strip import strip

QUEUES = Path(__file__).resolve().parent / "fixtures" / "classify" / "queues"

# name -> (kind, attributes beyond code.*)
EXPECTED = {
    "process emails": ("CONSUMER", {"messaging.system": "bullmq", "messaging.destination.name": "emails", "messaging.operation.type": "process"}),
    "process reports": ("CONSUMER", {"messaging.system": "bullmq", "messaging.destination.name": "reports", "messaging.operation.type": "process"}),
    "process send welcome email": (
        "CONSUMER", {"messaging.system": "agenda", "messaging.destination.name": "send welcome email", "messaging.operation.type": "process"},
    ),
    "process cleanup": ("CONSUMER", {"messaging.system": "agenda", "messaging.destination.name": "cleanup", "messaging.operation.type": "process"}),
    "orderConsumer.eachMessage": ("INTERNAL", {}),  # inside @opentelemetry/instrumentation-kafkajs's CONSUMER span
    "taskConsumer.onMessage": ("INTERNAL", {}),  # inside @opentelemetry/instrumentation-amqplib's
    "send emails": ("PRODUCER", {"messaging.system": "bullmq", "messaging.destination.name": "emails", "messaging.operation.type": "send"}),
    # two functions send to `reports`: neither takes the destination's name
    "requestDailyReport": ("PRODUCER", {"messaging.system": "bullmq", "messaging.destination.name": "reports", "messaging.operation.type": "send"}),
    "requestWeeklyReport": ("PRODUCER", {"messaging.system": "bullmq", "messaging.destination.name": "reports", "messaging.operation.type": "send"}),
    "recordAudit": ("PRODUCER", {"messaging.system": "bullmq", "messaging.operation.type": "send"}),  # an imported queue name
    "send videos": ("PRODUCER", {"messaging.system": "bull", "messaging.destination.name": "videos", "messaging.operation.type": "send"}),
    "publishVideo": ("PRODUCER", {"messaging.system": "bull", "messaging.operation.type": "send"}),  # two queues
    "send welcome": ("PRODUCER", {"messaging.system": "kue", "messaging.destination.name": "welcome", "messaging.operation.type": "send"}),
    "Jobs.dispatch": ("PRODUCER", {"messaging.system": "kue", "messaging.operation.type": "send"}),  # a job type in a parameter
    "publishOrder": ("INTERNAL", {}),  # inside @opentelemetry/instrumentation-kafkajs's PRODUCER span
    # bull and kue processors: queue.process(...) on a queue the file makes
    "process videos": ("CONSUMER", {"messaging.system": "bull", "messaging.destination.name": "videos", "messaging.operation.type": "process"}),
    "process thumbnails": ("CONSUMER", {"messaging.system": "bull", "messaging.destination.name": "thumbnails", "messaging.operation.type": "process"}),
    "process welcome": ("CONSUMER", {"messaging.system": "kue", "messaging.destination.name": "welcome", "messaging.operation.type": "process"}),
}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    dest = tmp_path / "queues"
    shutil.copytree(QUEUES, dest)
    return dest


def test_consumer_handlers_get_their_spans(app: Path) -> None:
    result = instrument(app, write=False, settings={})
    spans = {s.name: s for s in result.synthesis.spans if s.worker == "messaging"}
    assert set(spans) == set(EXPECTED)
    for name, (kind, attrs) in EXPECTED.items():
        got = dict(spans[name].attributes)
        assert spans[name].kind == kind, name
        assert {k: v for k, v in got.items() if not k.startswith("code.")} == attrs, name
    assert "emailQueueName" not in {s.symbol for s in result.synthesis.skips} | {s.name for s in result.synthesis.spans}
    text = result.synthesis.changes["src/workers/reportWorker.ts"][1].decode()
    assert "import { withConsumerSpan } from '../otel';" in text
    assert "export function withConsumerSpan<T>" in result.synthesis.changes["src/otel.ts"][1].decode()
    assert "return withConsumerSpan<Promise<string>>('process reports', {" in text  # the named handler, not the call site


def test_second_run_changes_nothing_and_strip_restores(app: Path) -> None:
    before = {p: p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    instrument(app)
    again = instrument(app, write=False)
    assert not again.synthesis.changes
    assert {s.name for s in again.synthesis.spans if s.worker == "messaging"} == set(EXPECTED)
    strip(app)
    after = {p: p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    assert after == before


def test_a_handler_from_another_module_is_reported(app: Path) -> None:
    (app / "src" / "workers" / "imported.ts").write_text(
        "import { Worker } from 'bullmq';\nimport { sendEmail } from '../services/mailer';\n\n"
        "export const w = new Worker('mail', sendEmail, { connection: { host: 'localhost' } });\n"
    )
    result = instrument(app, write=False, settings={})
    skips = [s for s in result.synthesis.skips if s.file == "src/workers/imported.ts"]
    assert [(s.symbol, s.reason) for s in skips] == [
        ("sendEmail", "bullmq handler is not a function of this file; wrap it where it is defined")
    ]


def test_disabling_the_worker_leaves_consumers_alone(app: Path) -> None:
    result = instrument(app, write=False, settings={"workers": {"messaging": False}})
    assert not any(s.worker == "messaging" for s in result.synthesis.spans)
    assert "src/workers/emailWorker.ts" not in result.synthesis.changes
