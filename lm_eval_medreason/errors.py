"""Every error the package raises on purpose, under one base, and the one-line form of any exception.

Each message is one line naming what to fix (the file and row, the setting, the flag); the
``medreason`` command prints it without a traceback. An error keeps the built-in base it
always had (``DataError`` is a ``ValueError``, ...), so ``except ValueError`` still catches it.
No message may carry an API key: ``scrub`` removes it, and ``one_line`` applies it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-*]{4,}")


class MedreasonError(Exception):
    """The base of every error below: catch it to catch any of them."""


# ---------------------------------------------------------------- data


class DataError(MedreasonError, ValueError):
    """A benchmark file is missing, unreadable or has a bad row; the message is one line saying what to fix."""


class TokenEncodingError(MedreasonError, ValueError):
    """The token encoding cannot be used; the message is one line naming the setting and the fix."""


class Busy(MedreasonError, RuntimeError):
    """Another live process holds the lock; ``owner`` is the process id it wrote ("?" if none)."""

    def __init__(self, path: Path, owner: str):
        super().__init__(f"{path} is held by process {owner}")
        self.path, self.owner = path, owner


# ---------------------------------------------------------------- evaluation and reporting


class JudgeSetupError(MedreasonError, ValueError):
    """The judge cannot work as configured; the message is one line naming the setting and the fix."""


class ReportError(MedreasonError):
    """Bad input to ``medreason report``: the message names the folder or file to fix."""


# ---------------------------------------------------------------- distillation


@dataclass
class TeacherError(MedreasonError):
    """A request that failed after retries; ``final`` when asking again cannot help (e.g. HTTP 400)."""

    message: str
    final: bool = False
    kind: str = "api_error"

    def __str__(self) -> str:
        return self.message


class TeacherFatal(MedreasonError):
    """The API refused the run itself (key, permission, URL, model): stop, record nothing; the message names the fix."""


# ---------------------------------------------------------------- fine-tuning


class TrainError(MedreasonError, ValueError):
    """A setting is wrong or the run failed; the message is one line saying what to fix."""


class RecipeError(MedreasonError, ValueError):
    """A recipe cannot be found or read; the message is one line naming the file."""


class AdapterError(MedreasonError, RuntimeError):
    """The saved adapter is missing, empty or untrained; the message is one line naming the file."""


class FolderBusy(MedreasonError, RuntimeError):
    """Another training still runs in this output folder."""


class LaunchMismatch(MedreasonError, ValueError):
    """The processes or the data differ from what the run record says; the message is one line."""


# ---------------------------------------------------------------- messages


def scrub(text: str, key: str | None = None) -> str:
    """``text`` without the API key (``key``, else ``$OPENAI_API_KEY``) nor anything shaped like an OpenAI
    key: servers may echo the key back in an error."""
    key = key if key is not None else os.environ.get("OPENAI_API_KEY", "")
    if key and key != "EMPTY" and len(key) >= 4:
        text = text.replace(key, "***")
    return _KEY_LIKE.sub(r"\1***", text)


def one_line(err: BaseException) -> str:
    """An exception as 'Type: first line' (at most 300 characters of it), without the API key."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__
    return scrub(text)
