"""`medreason distill --batch`: the teacher's requests through OpenAI's Batch API (half price, within 24 h).

``BatchTeacher`` has the interface of ``Teacher`` (``ask(prompt) -> Reply``), so the pipeline is the
same: every pending case asks at once, the requests gathered in one turn of the event loop go
out as one batch (``client.files.create`` of a JSONL with ``custom_id`` = the item's stable id
and stage, then ``client.batches.create``), the batch is polled (``client.batches.retrieve``,
every ``poll_interval`` seconds), and its output and error files (``client.files.content``)
answer the waiting cases. LongMonolog's stage 2 is a second batch. A request asked after a
batch has gathered its requests goes out in a batch of its own, never left waiting.

A stage with more requests than one batch may hold (OpenAI: 50,000 requests, a 200 MB input
file) goes out as several batches at once, split in the order of the custom ids so that a
resumed run splits its pending requests the same way.

Failures (a non-200 line, a line in the error file, a request missing from both because the
batch expired, a reply stopped by a content filter) are resubmitted in a new batch, at most
``resubmits`` times; a content filter then stands as the verdict, and what still fails is
an ``api_error`` drop (not final: the next run tries it again). A refusal of the run itself
(HTTP 401, 403, 404 or an unknown model, on an upload, a batch or a request line) raises
``TeacherFatal`` in every waiting case, as live requests do.

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
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.distillation.teacher import JsonObject, Reply, Teacher, http_error, read_reply, status_error
from lm_eval_medreason.errors import TeacherError, TeacherFatal, one_line

DONE = ("completed", "failed", "expired", "cancelled")
MAX_BATCH_REQUESTS = 50_000  # OpenAI's limits for one batch: 50,000 requests, a 200 MB input file
MAX_BATCH_BYTES = 190_000_000  # with room for the upload's envelope


def batch_key(custom_ids) -> str:
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode()).hexdigest()[:24]


@dataclass
class BatchTeacher(Teacher):
    """A ``Teacher`` whose ``ask`` waits for a batch (see the module docstring); its own settings are fields too."""

    state_path: Path | None = None
    poll_interval: float = 30.0
    resubmits: int = 2
    max_batch_requests: int = MAX_BATCH_REQUESTS
    max_batch_bytes: int = MAX_BATCH_BYTES

    async def __aenter__(self) -> "BatchTeacher":
        await super().__aenter__()
        self.waiting: dict[str, tuple[dict, asyncio.Future]] = {}
        self.flushes: set[asyncio.Task] = set()  # each sends the requests it collected; kept referenced
        self.collecting = False  # a flush is gathering requests: a new ask joins it
        self.stage_counter: dict[str, int] = {}
        self.in_flight = self._load_state()  # batch key -> batch id, saved at every change
        return self

    async def ask(self, prompt: str, custom_id: str | None = None) -> Reply:
        body = self.request(prompt)
        custom_id = custom_id or hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        future = asyncio.get_running_loop().create_future()
        self.waiting[custom_id] = (body, future)
        if not self.collecting:  # else a flush is about to take this request with the others
            self.collecting = True
            flush = asyncio.get_running_loop().create_task(self._flush())
            self.flushes.add(flush)
            flush.add_done_callback(self.flushes.discard)
        return await future

    async def _flush(self) -> None:
        import openai

        for _ in range(20):  # let every worker that is about to ask do so: one batch per stage
            await asyncio.sleep(0)
        requests, self.waiting = self.waiting, {}
        self.collecting = False  # a request asked from now on goes out in a batch of its own
        try:
            results = await self._run(requests)
        except openai.APIStatusError as err:  # an upload or a batch refused: every waiting case gets the error
            error = status_error(err, self.model, self.base_url)
            results = {cid: error for cid in requests}
        except Exception as err:  # noqa: BLE001 - every waiting case gets the error
            results = {cid: TeacherError(one_line(err)) for cid in requests}
        for cid, (_, future) in requests.items():
            result = results.get(cid) or TeacherError("no result for this request in the batch's files")
            if not future.done():
                future.set_exception(result) if isinstance(result, Exception) else future.set_result(result)

    async def _run(self, requests: dict) -> dict:
        """Submit, then resubmit what failed, at most ``resubmits`` times."""
        results: dict = {}
        todo = {cid: body for cid, (body, _) in requests.items()}
        for _ in range(self.resubmits + 1):
            got = {}
            for part in await asyncio.gather(*(self._one_batch(lines) for lines in self.split(todo))):
                got.update(part)
            results.update(got)
            fatal = next((r for r in got.values() if isinstance(r, TeacherFatal)), None)
            if fatal:
                return {cid: fatal for cid in requests}
            todo = {cid: body for cid, body in todo.items() if not _settled(got[cid])}
            if not todo:
                break
        return results

    def split(self, bodies: dict[str, dict]) -> list[dict[str, str]]:
        """The request lines (custom id -> JSONL line) of each batch: in custom-id order, at most
        ``max_batch_requests`` lines and ``max_batch_bytes`` bytes a batch."""
        batches, current, size = [], {}, 0
        for cid in sorted(bodies):
            line = json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                               "body": bodies[cid]}) + "\n"
            if current and (len(current) >= self.max_batch_requests or size + len(line.encode()) > self.max_batch_bytes):
                batches.append(current)
                current, size = {}, 0
            current[cid] = line
            size += len(line.encode())
        return batches + [current] if current else batches

    async def __aexit__(self, *exc) -> None:
        for flush in list(self.flushes):  # after a fatal error or Ctrl-C: stop polling
            flush.cancel()
        await super().__aexit__(*exc)

    async def _one_batch(self, lines: dict[str, str]) -> dict:
        key = batch_key(lines)
        batch_id = self.in_flight.get(key)
        if batch_id is None:
            uploaded = await self.client.files.create(file=("distill_batch.jsonl", "".join(lines.values()).encode()),
                                                      purpose="batch")
            batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                     completion_window="24h")
            batch_id = batch.id
            self.in_flight[key] = batch_id
            self._save()
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
                    results[record.get("custom_id")] = _result(record, self.model, self.base_url)
        for cid in lines:
            results.setdefault(cid, TeacherError(f"batch {batch_id} ended {batch.status} without this request"))
        self.in_flight.pop(key, None)
        self._save()
        return results

    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text()) if self.state_path and self.state_path.exists() else {}
        except ValueError:
            return {}

    def _save(self) -> None:
        """Write the batches in flight (synchronously: concurrent batches never overwrite each other's entry)."""
        if not self.state_path:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(self.in_flight))
        os.replace(tmp, self.state_path)


def _settled(result) -> bool:
    """A reply, unless a content filter stopped it (asked again, as a live request would be)."""
    return isinstance(result, Reply) and result.finish_reason != "content_filter"


def _result(record: dict, model: str, base_url: str | None):
    """A Reply from one line of a batch's output or error file, else a TeacherError or TeacherFatal."""
    response = record.get("response") or {}
    if record.get("error") or response.get("status_code") != 200:
        error = record.get("error") or (response.get("body") or {}).get("error") or {}
        error = error if isinstance(error, dict) else {"message": str(error)}
        status = response.get("status_code")
        judged = http_error(status, error, model, base_url) if isinstance(status, int) else None
        if isinstance(judged, TeacherFatal) or (judged and judged.final):  # as a live request's status
            return judged
        return TeacherError(f"batch request failed: HTTP {status} {error.get('message')}"[:300])
    try:
        return read_reply(JsonObject(response["body"]))
    except Exception as err:  # noqa: BLE001
        return TeacherError(f"malformed batch response: {one_line(err)}", kind="malformed_response")
