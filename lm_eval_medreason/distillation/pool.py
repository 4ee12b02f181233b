"""Helper processes that make the teacher's HTTP calls, for more requests per second than one process.

The openai SDK spends CPU on every request (request building, HTTP, parsing), which caps the
requests per second of one event loop. ``ProcessPool(n, factory, config)`` starts ``n`` helper
processes (spawned; each builds ``factory(**config)``, a ``teacher.Teacher``, with its own ``AsyncOpenAI``
and reads the API key from the environment it inherits), and ``await pool.call(body)`` sends a request body to
one of them, round robin, and returns its ``Reply`` or raises its ``TeacherError`` or
``TeacherFatal``. Each side reads its pipe in a thread, so neither can block the other. Helpers
ignore SIGINT (the main process handles Ctrl-C) and stop when the main process closes the pool
or dies (end of file on the pipe), cancelling the requests they still have in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import signal
import threading

from lm_eval_medreason.errors import TeacherError, TeacherFatal, one_line


class ProcessPool:
    def __init__(self, n: int, factory, config: dict):
        ctx = multiprocessing.get_context("spawn")
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count()
        self.workers = []
        for _ in range(n):
            req_main, req_child = ctx.Pipe()
            res_main, res_child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(req_child, res_child, factory, config), daemon=True)
            proc.start()
            req_child.close()
            res_child.close()
            threading.Thread(target=self._read, args=(res_main,), daemon=True).start()
            self.workers.append((proc, req_main))
        self.next = itertools.cycle(range(n))

    def _read(self, conn) -> None:
        while True:
            try:
                ident, result = conn.recv()
            except (EOFError, OSError):
                return
            self.loop.call_soon_threadsafe(self._resolve, ident, result)

    def _resolve(self, ident: int, result) -> None:
        future = self.pending.pop(ident, None)
        if future is None or future.done():
            return
        kind, value = result
        if kind == "ok":
            future.set_result(value)
        elif kind == "fatal":
            future.set_exception(TeacherFatal(value))
        else:
            message, final, error_kind = value
            future.set_exception(TeacherError(message, final=final, kind=error_kind))

    async def call(self, body: dict):
        ident = next(self.ids)
        future = self.loop.create_future()
        self.pending[ident] = future
        self.workers[next(self.next)][1].send((ident, body))
        return await future

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for proc, _ in self.workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def _serve(requests, results, factory, config: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve_async(requests, results, factory, config))


async def _serve_async(requests, results, factory, config: dict) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: set = set()
    send_lock = threading.Lock()
    teacher = factory(**config)

    async def handle(ident: int, body: dict) -> None:
        try:
            result = ("ok", await teacher.call(body))
        except TeacherError as err:
            result = ("err", (err.message, err.final, err.kind))
        except TeacherFatal as err:
            result = ("fatal", str(err))
        except asyncio.CancelledError:
            return  # the main process closed the pool: nobody waits for this answer
        except Exception as err:  # noqa: BLE001 - reported to the main process as a retryable API error
            result = ("err", (one_line(err), False, "api_error"))
        try:
            with send_lock:
                results.send((ident, result))
        except OSError:
            pass  # the main process is gone

    def dispatch(message) -> None:
        if message is None:
            stop.set()
            return
        task = loop.create_task(handle(*message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def read() -> None:
        while True:
            try:
                message = requests.recv()
            except (EOFError, OSError):
                message = None
            loop.call_soon_threadsafe(dispatch, message)
            if message is None:
                return

    async with teacher:
        threading.Thread(target=read, daemon=True).start()
        await stop.wait()
        for task in tasks:  # none in a finished run; after a fatal error or Ctrl-C, nobody waits for them
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
