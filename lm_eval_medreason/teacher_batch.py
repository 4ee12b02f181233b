"""`medreason distill --batch`: the teacher's requests through OpenAI's Batch API (half price, within 24 h).

``BatchTeacher`` has the interface of ``Teacher`` (``ask(prompt) -> Reply``), so the pipeline is the
same: every pending case asks at once, the requests gathered in one turn of the event loop go
out as one batch (``client.files.create`` of a JSONL with ``custom_id`` = the item's stable id
and stage, then ``client.batches.create``), the batch is polled (``client.batches.retrieve``,
every ``poll_interval`` seconds), and its output and error files (``client.files.content``)
answer the waiting cases. LongMonolog's stage 2 is a second batch.

Failures (a non-200 line, a line in the error file, a request missing from both because the
batch expired) are resubmitted in a new batch, at most ``resubmits`` times; what still fails is
an ``api_error`` drop (not final: the next run tries it again).

Resume: the batch id of each submitted set of requests is saved in ``<output>.batches.json``
under a hash of its custom ids, before polling starts. A run killed while a batch is in flight
finds, on the next run, the same pending items, the same custom ids and hence the saved batch
id: it polls that batch instead of paying for a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

from lm_eval_medreason.teacher import Reply, Teacher, TeacherError, _Obj, _one_line, _reply

DONE = ("completed", "failed", "expired", "cancelled")


def batch_key(custom_ids) -> str:
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode()).hexdigest()[:24]


class BatchTeacher(Teacher):
    """A ``Teacher`` whose ``ask`` waits for a batch (see the module docstring)."""

    state_path: Path | None = None
    poll_interval: float = 30.0
    resubmits: int = 2

    async def __aenter__(self) -> "BatchTeacher":
        await super().__aenter__()
        self.waiting: dict[str, tuple[dict, asyncio.Future]] = {}
        self.flusher: asyncio.Task | None = None
        self.stage_counter: dict[str, int] = {}
        return self

    async def ask(self, prompt: str, custom_id: str | None = None) -> Reply:
        body = self.request(prompt)
        custom_id = custom_id or hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        future = asyncio.get_running_loop().create_future()
        self.waiting[custom_id] = (body, future)
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        for _ in range(20):  # let every worker that is about to ask do so: one batch per stage
            await asyncio.sleep(0)
        requests, self.waiting = self.waiting, {}
        try:
            results = await self._run(requests)
        except Exception as err:  # noqa: BLE001 - every waiting case gets the error
            results = {cid: TeacherError(_one_line(err)) for cid in requests}
        for cid, (_, future) in requests.items():
            result = results.get(cid) or TeacherError("no result for this request in the batch's files")
            if not future.done():
                future.set_exception(result) if isinstance(result, Exception) else future.set_result(result)

    async def _run(self, requests: dict) -> dict:
        """Submit, then resubmit what failed, at most ``resubmits`` times."""
        results: dict = {}
        todo = {cid: body for cid, (body, _) in requests.items()}
        for _ in range(self.resubmits + 1):
            got = await self._one_batch(todo)
            results.update(got)
            todo = {cid: body for cid, body in todo.items() if not isinstance(got[cid], Reply)}
            if not todo:
                break
        return results

    async def _one_batch(self, bodies: dict[str, dict]) -> dict:
        key = batch_key(bodies)
        state = self._state()
        batch_id = state.get(key)
        if batch_id is None:
            lines = "".join(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": b})
                            + "\n" for cid, b in bodies.items())
            uploaded = await self.client.files.create(file=("distill_batch.jsonl", lines.encode()), purpose="batch")
            batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                     completion_window="24h")
            batch_id = batch.id
            state[key] = batch_id
            self._save(state)
        while True:
            batch = await self.client.batches.retrieve(batch_id)
            if batch.status in DONE:
                break
            await asyncio.sleep(self.poll_interval)
        results: dict = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    record = json.loads(line)
                    results[record.get("custom_id")] = _result(record)
        for cid in bodies:
            results.setdefault(cid, TeacherError(f"batch {batch_id} ended {batch.status} without this request"))
        state.pop(key, None)
        self._save(state)
        return results

    def _state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text()) if self.state_path and self.state_path.exists() else {}
        except ValueError:
            return {}

    def _save(self, state: dict) -> None:
        if not self.state_path:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)


def _result(record: dict):
    """A Reply from one line of a batch's output or error file, else a TeacherError."""
    response = record.get("response") or {}
    if record.get("error") or response.get("status_code") != 200:
        error = record.get("error") or (response.get("body") or {}).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        return TeacherError(f"batch request failed: HTTP {response.get('status_code')} {message}"[:300])
    try:
        return _reply(_Obj(response["body"]))
    except Exception as err:  # noqa: BLE001
        return TeacherError(f"malformed batch response: {_one_line(err)}", kind="malformed_response")
