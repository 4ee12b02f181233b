"""A real OpenAI-compatible server for the tests: `transformers serve` of the tiny model, as a pytest fixture."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_server(tiny_model, tmp_path_factory):
    """`transformers serve TINY_MODEL` on 127.0.0.1 (CPU); yields (base_url, model). Always stopped."""
    from transformers.utils.import_utils import is_serve_available

    executable = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if not executable:
        pytest.skip("the `transformers` command is not installed")
    if not is_serve_available():
        pytest.skip("`transformers serve` needs FastAPI and uvicorn: pip install fastapi uvicorn (transformers[serving])")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as out:
        server = subprocess.Popen(
            [executable, "serve", str(tiny_model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"`transformers serve` did not start (exit {server.poll()}): {log.read_text()[-1500:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
