"""Tokenizer backends: tiktoken, HuggingFace tokenizer.json, and the estimating proxy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxbudget.errors import ConfigError, TokenizerError
from ctxbudget.tokens import (
    ESTIMATE_FACTORS,
    EstimatingTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
)
from ctxbudget.tokens.backends import scale


@pytest.fixture(scope="module")
def o200k() -> TiktokenTokenizer:
    return TiktokenTokenizer.load("o200k_base")


def test_tiktoken_counts_exactly(o200k: TiktokenTokenizer) -> None:
    assert isinstance(o200k, Tokenizer)
    assert o200k.name == "o200k_base"
    assert o200k.exact is True
    assert o200k.count("hello world") == 2
    assert o200k.count("") == 0


def test_special_token_strings_count_as_plain_text(o200k: TiktokenTokenizer) -> None:
    # A provider treats "<|endoftext|>" inside a message as characters, not the special token.
    assert o200k.count("<|endoftext|>") == len(o200k.encoding.encode_ordinary("<|endoftext|>"))
    assert o200k.count("<|endoftext|>") > 1


def test_lone_surrogates_do_not_crash(o200k: TiktokenTokenizer) -> None:
    assert o200k.count("bad \ud800 surrogate") > 0


def _write_tokenizer_json(path: Path) -> Path:
    from tokenizers import Tokenizer as HFLib
    from tokenizers import models, pre_tokenizers, trainers

    tok = HFLib(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]"])
    tok.train_from_iterator(["hello world", "hello there, world!"], trainer)
    tok.save(str(path))
    return path


def test_hf_tokenizer_from_a_file_built_here(tmp_path: Path) -> None:
    path = _write_tokenizer_json(tmp_path / "tokenizer.json")
    tok = HFTokenizer.from_file(path)
    assert isinstance(tok, Tokenizer)
    assert tok.exact is True
    assert tok.name == str(path)
    assert tok.count("hello world") == 2
    assert tok.count("hello there , world !") == 5
    assert tok.count("unknown words map to unk") == 5
    assert HFTokenizer.from_file(path, name="tiny").name == "tiny"


def test_hf_tokenizer_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"does not exist"):
        HFTokenizer.from_file(tmp_path / "nope.json")


def test_hf_tokenizer_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot be read"):
        HFTokenizer.from_file(bad)


def test_hf_missing_dependency_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'ctxbudget\[hf\]'"):
        HFTokenizer.from_file(tmp_path / "tokenizer.json")


def test_estimating_tokenizer_scales_the_proxy(o200k: TiktokenTokenizer) -> None:
    est = EstimatingTokenizer(o200k, 1.3)
    assert isinstance(est, Tokenizer)
    assert est.exact is False
    assert est.name == "o200k_base*1.3"
    text = "The quick brown fox jumps over the lazy dog."
    assert est.raw(text) == o200k.count(text) == 10
    assert est.count(text) == 13  # 10 * 1.3, no float round-up to 14
    assert est.with_factor(2.0).count(text) == 20


def test_estimating_tokenizer_for_family() -> None:
    est = EstimatingTokenizer.for_family("anthropic")
    assert est.factor == ESTIMATE_FACTORS["anthropic"]
    assert est.proxy.name == "o200k_base"
    with pytest.raises(ConfigError, match="no estimate factor"):
        EstimatingTokenizer.for_family("openai")


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_estimating_tokenizer_rejects_bad_factors(o200k: TiktokenTokenizer, factor: float) -> None:
    with pytest.raises(ConfigError, match="positive finite"):
        EstimatingTokenizer(o200k, factor)


@given(st.integers(0, 10**7), st.floats(0.1, 5.0))
def test_scale_never_rounds_down(raw: int, factor: float) -> None:
    scaled = scale(raw, factor)
    assert scaled >= raw * factor - 1e-6
    assert scaled <= raw * factor + 1
