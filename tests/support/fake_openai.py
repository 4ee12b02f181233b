"""A small OpenAI-compatible chat server on 127.0.0.1 that answers from a script, for tests.

``answer(prompt) -> str`` decides each reply, so a test knows exactly what the
model said; every request body is kept in ``requests`` for assertions (and its HTTP
headers, lowercased names, in ``requests.headers``). To inject a
fault, ``answer`` returns a ``Reply`` instead: an HTTP status with a raw body (e.g.
``Reply(429)``, ``Reply(500)``, ``Reply(200, body="not json")``). Error replies carry
``retry-after-ms: 1`` unless they set their own headers, so that the openai SDK's
retries (which honour that header) cost milliseconds instead of its 0.5-8 s backoff.
"""

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """A raw HTTP reply: ``status``, ``body`` (default: an OpenAI-style error object), ``headers``."""

    status: int
    body: str | None = None
    headers: dict = field(default_factory=lambda: {"retry-after-ms": "1"})

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body.encode()
        error = {"message": f"scripted failure {self.status}", "type": "server_error", "code": self.status}
        return json.dumps({"error": error}).encode()


def completion(text: str, model: str, number: int, finish_reason: str = "stop", usage: dict | None = None) -> bytes:
    """An OpenAI chat.completion object whose one choice says ``text``."""
    return json.dumps(
        {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}],
            "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    ).encode()


@contextmanager
def serve_in_thread(server, base_url: str):
    """Run ``server`` on a daemon thread; yield ``base_url`` (formatted with ``port``); always shut it down."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url.format(port=server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class Requests(list):
    """The request bodies received, in order; ``headers`` holds each request's headers."""

    def __init__(self):
        super().__init__()
        self.headers = []


@contextmanager
def fake_chat_server(answer, whole_body: bool = False):
    """Serve ``/v1/chat/completions`` with ``answer(last user message)`` (``answer(request body)`` with
    ``whole_body``: the sampling settings too); yield (base_url, requests).

    ``base_url`` is the full endpoint URL (what lm-eval's ``local-chat-completions`` takes);
    the openai SDK wants its ``/v1`` prefix: ``base_url.removesuffix("/chat/completions")``.
    """
    requests = Requests()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                requests.append(body)
                requests.headers.append({k.lower(): v for k, v in self.headers.items()})
                number = len(requests)
            text = answer(body if whole_body else body["messages"][-1]["content"])
            reply = text if isinstance(text, Reply) else None
            data = reply.payload() if reply else completion(text, body.get("model", "fake"), number)
            self.send_response(reply.status if reply else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (reply.headers if reply else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serve_in_thread(server, "http://127.0.0.1:{port}/v1/chat/completions") as url:
        yield url, requests
