"""Real processes export real OTLP: uvicorn and an `arq` worker with OTEL_EXPORTER_OTLP_ENDPOINT set, against an
OTLP/HTTP receiver this test runs (decoded with opentelemetry-proto)."""

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from service.dev.server import free_port
from tests.e2e.conftest import Proc, wait_until

pytestmark = pytest.mark.e2e
SERVER = 2  # opentelemetry.proto's SPAN_KIND_SERVER


class OtlpReceiver:
    """Collects every span POSTed to /v1/traces, with the service name of the process that sent it."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    receiver.paths.append(self.path)
                    for resource_spans in request.resource_spans:
                        service = next(
                            a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                        )
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(service, span) for span in scope_spans.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, prefix: str) -> list[tuple[str, Any]]:
        with self.lock:
            return [(service, span) for service, span in self.spans if span.name.startswith(prefix)]


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_post_and_its_job_s_run_arrive_as_one_trace(
    otlp: OtlpReceiver, start_web: Callable[[], str], start_worker: Callable[[], Proc], env: dict[str, str]
) -> None:
    # `otlp` first: set up before the processes and torn down after them, so their last exports find it.
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.url
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # the SDK's batch delay, in ms (5 s by default)
    url = start_web()
    start_worker()
    task_id = httpx.post(f"{url}/tasks", json={"type": 0}).json()["task_id"]
    wait_until(lambda: httpx.get(f"{url}/tasks/{task_id}").json()["task_status"] == "SUCCESS", "the task's success")

    (run_service, run), *_ = wait_until(lambda: otlp.named("run run_sleep_task"), "the job's span")
    (enqueue_service, enqueue), *_ = wait_until(lambda: otlp.named("enqueue run_sleep_task"), "the enqueue span")
    server = wait_until(lambda: [s for s in otlp.named("POST /tasks") if s[1].kind == SERVER], "the request's span")
    ((server_service, server_span),) = server
    assert otlp.paths[0] == "/v1/traces"
    assert (run_service, enqueue_service, server_service) == (
        "fastapi-arq-jobs-worker",
        "fastapi-arq-jobs-web",
        "fastapi-arq-jobs-web",
    )
    assert run.trace_id == enqueue.trace_id == server_span.trace_id
    assert run.parent_span_id == enqueue.span_id
    assert enqueue.parent_span_id == server_span.span_id
    attributes = {a.key: a.value for a in run.attributes}
    assert attributes["job.id"].string_value == task_id
    assert attributes["job.try"].int_value == 1
    # The health probes that start_web polled made no spans.
    assert not otlp.named("GET /health")
