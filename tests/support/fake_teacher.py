"""A scripted OpenAI-compatible teacher on 127.0.0.1 with fault injection, for the distill tests and benchmark.

``fake_teacher(script, latency=0.0)`` serves ``/v1/chat/completions`` over HTTP/1.1 (keep-alive,
one thread per connection) and yields ``(base_url, server)``; ``base_url`` ends in ``/v1`` as
the openai SDK wants. Each request's case is the ``[case ID]`` marker of its last message;
``script(case_id, attempt, body)`` (attempt counts that case's requests from 1) returns the
reply text or a ``Fault``:

- ``Fault(429, headers={"Retry-After": "1"})``, ``Fault(500)``: an HTTP error;
- ``Fault(sleep=3)``: answer only after 3 s (longer than the client's timeout: a timeout);
- ``Fault(body="{not json")``: a 200 whose body is not JSON;
- ``Fault(finish_reason="length", text=...)``: a completion with that finish reason.

``server.requests`` counts requests per case id (``Counter``), ``server.bodies`` keeps every body.

It also serves a minimal Batch API: ``POST /v1/files`` (multipart; the JSONL lines are kept),
``POST /v1/batches`` (answers every line through ``script`` at once), ``GET /v1/batches/{id}``
(``in_progress`` on the first look and while ``server.hold`` is set, then ``completed``) and
``GET /v1/files/{id}/content``. An error ``Fault`` becomes a line of the batch's error file.
``server.calls`` counts ``files.create``/``batches.create``/``batches.retrieve`` calls.
Run as a script (``python -m tests.support.fake_teacher --latency 0.2``, from the repository root) it prints its base URL and
answers every case with a fixed correct-looking trace, for the throughput benchmark.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_openai import completion as openai_completion
from tests.support.fake_openai import serve_in_thread

CASE = re.compile(r"\[case ([^\]]+)\]")


@dataclass
class Fault:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: str | None = None
    sleep: float = 0.0
    finish_reason: str | None = None
    text: str = ""


def completion(text: str, model: str, number: int, finish_reason: str = "stop", reasoning_tokens: int = 0) -> bytes:
    """fake_openai's chat.completion with fixed usage figures, reasoning tokens included."""
    usage = {"prompt_tokens": 100, "completion_tokens": 50 + reasoning_tokens, "total_tokens": 150 + reasoning_tokens,
             "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}
    return openai_completion(text, model, number, finish_reason, usage)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        """A client that hung up (a cancelled request) is no error of the server's; others are printed."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@contextmanager
def fake_teacher(script, latency: float = 0.0, reasoning_tokens: int = 0, nagle: bool = False):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY, as asyncio servers (uvicorn: vLLM, transformers serve) set it. http.server leaves
        # Nagle's algorithm on, and its two writes per reply (headers, body) then wait for the client's
        # delayed ACK: a wait per request that no real server adds.
        disable_nagle_algorithm = not nagle

        def send_json(self, status, payload):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            parts = self.path.split("?")[0].strip("/").split("/")  # v1/batches/ID or v1/files/ID/content
            with lock:
                if parts[1] == "batches":
                    server.calls["batches.retrieve"] += 1
                    batch = server.batches[parts[2]]
                    batch["looks"] += 1
                    done = batch["looks"] > 1 and not server.hold
                    payload = {k: v for k, v in batch.items() if k != "looks"}
                    payload["status"] = "completed" if done else "in_progress"
                    if not done:
                        payload["output_file_id"] = payload["error_file_id"] = None
                    return self.send_json(200, payload)
                return self.send_json(200, server.files[parts[2]])

        def post_batch_api(self, raw: bytes):
            with lock:
                if self.path.endswith("/files"):
                    server.calls["files.create"] += 1
                    file_id = f"file-{len(server.files)}"
                    server.files[file_id] = b"\n".join(
                        line for line in raw.split(b"\n") if line.startswith(b'{"custom_id"')) + b"\n"
                    return self.send_json(200, {"id": file_id, "object": "file", "bytes": len(raw), "created_at": 0,
                                                "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})
                server.calls["batches.create"] += 1
                request = json.loads(raw)
                lines = [json.loads(x) for x in server.files[request["input_file_id"]].splitlines() if x.strip()]
            out, err = [], []
            for line in lines:
                content = line["body"]["messages"][-1]["content"]
                match = CASE.search(content)
                case_id = match.group(1) if match else "?"
                with lock:
                    server.requests[case_id] += 1
                    server.bodies.append(line["body"])
                    attempt = server.requests[case_id]
                reply = script(case_id, attempt, line["body"])
                if isinstance(reply, Fault) and reply.status != 200:
                    err.append({"id": "r", "custom_id": line["custom_id"], "response": {"status_code": reply.status,
                                "body": {"error": {"message": f"scripted {reply.status}"}}}, "error": None})
                    continue
                text, finish = (reply.text, reply.finish_reason or "stop") if isinstance(reply, Fault) else (reply, "stop")
                body = json.loads(completion(text, line["body"].get("model", "fake"), 0, finish))
                out.append({"id": "r", "custom_id": line["custom_id"], "response": {"status_code": 200, "body": body},
                            "error": None})
            with lock:
                batch_id = f"batch-{len(server.batches)}"
                ids = []
                for records in (out, err):
                    file_id = f"file-{len(server.files)}"
                    server.files[file_id] = "".join(json.dumps(r) + "\n" for r in records).encode()
                    ids.append(file_id if records else None)
                server.batches[batch_id] = {
                    "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id":
                    request["input_file_id"], "completion_window": "24h", "created_at": 0, "status": "validating",
                    "output_file_id": ids[0], "error_file_id": ids[1], "looks": 0}
                payload = {k: v for k, v in server.batches[batch_id].items() if k != "looks"}
            return self.send_json(200, payload)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if not self.path.endswith("/chat/completions"):
                return self.post_batch_api(raw)
            try:
                body = json.loads(raw)
            except ValueError:  # the client hung up while sending (a cancelled request)
                self.close_connection = True
                return
            content = body["messages"][-1]["content"]
            match = CASE.search(content)
            case_id = match.group(1) if match else "?"
            with lock:
                server.requests[case_id] += 1
                server.bodies.append(body)
                server.log.append((case_id, time.monotonic()))
                attempt = server.requests[case_id]
                number = len(server.bodies)
            reply = script(case_id, attempt, body)
            if latency:
                time.sleep(latency)
            status, headers = 200, {}
            if isinstance(reply, Fault):
                time.sleep(reply.sleep)
                status, headers = reply.status, reply.headers
                if reply.body is not None:
                    data = reply.body.encode()
                elif status != 200:
                    data = json.dumps({"error": {"message": f"scripted {status}", "type": "server_error"}}).encode()
                else:
                    data = completion(reply.text, body.get("model", "fake"), number, reply.finish_reason or "stop")
            else:
                data = completion(reply, body.get("model", "fake"), number, reasoning_tokens=reasoning_tokens)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout) and closed the connection
                pass

        def log_message(self, *args):
            pass

    server = Server(("127.0.0.1", 0), Handler)
    server.requests = Counter()
    server.bodies = []
    server.log = []
    server.calls = Counter()
    server.files, server.batches, server.hold = {}, {}, False
    with serve_in_thread(server, "http://127.0.0.1:{port}/v1") as url:
        yield url, server


def correct_trace(letter: str, salt: str = "", words: int = 400) -> str:
    """A trace long enough for the default minimums (about 550 tokens), ending in the committed answer."""
    body = " ".join(f"finding{i % 37} {salt} suggests reconsideration" for i in range(words // 3))
    return f"Step 1. Key findings.\n{body}\nStep 5. Conclusion.\nThe answer is ({letter})"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--nagle", action="store_true", help="leave Nagle's algorithm on (http.server's default)")
    args = parser.parse_args()
    script = lambda case, attempt, body: correct_trace("A", case)  # noqa: E731
    with fake_teacher(script, latency=args.latency, nagle=args.nagle) as (url, _):
        print(url, flush=True)
        threading.Event().wait()
