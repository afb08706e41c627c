"""Token-exact head/tail slicing and middle truncation, for every tokenizer backend."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxbudget.tokens import EstimatingTokenizer, HFTokenizer, TiktokenTokenizer, Tokenizer
from ctxbudget.tokens.slicing import head_tail, truncate_middle

O200K = TiktokenTokenizer.load("o200k_base")
CL100K = TiktokenTokenizer.load("cl100k_base")

_ODD = list("🎉👍🏽🇫🇷中文字符漢字한국어ありがとう é\u0301 \n\t  abc XYZ 123 .,;'\"{}[]/_-")
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(_ODD)), max_size=300)


def _marker(omitted: int) -> str:
    return f" [… {omitted:,} tokens omitted …] "


_MARK = re.compile(r" \[… [\d,]+ tokens omitted …\] ")


def _pieces(result: str) -> tuple[str, str] | None:
    """Head and tail around the (last) marker of a truncated result, if there is one."""
    found = list(_MARK.finditer(result))
    if not found:
        return None
    mark = found[-1]
    return result[: mark.start()], result[mark.end() :]


@dataclass(frozen=True)
class CharTokenizer:
    """One token per character: a tokenizer without a special path (generic fallback)."""

    name: str = "chars"
    exact: bool = True

    def count(self, text: str) -> int:
        return len(text)


def test_head_tail_is_token_exact() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    tokens = O200K.encoding.encode_ordinary(text)
    head, tail, omitted = head_tail(O200K, text, 10, 5)
    assert head == O200K.encoding.decode(tokens[:10])
    assert tail == O200K.encoding.decode(tokens[-5:])
    assert omitted == len(tokens) - 15
    assert O200K.count(head) == 10
    assert O200K.count(tail) == 5


def test_head_tail_whole_text_when_it_fits() -> None:
    text = "short text"
    assert head_tail(O200K, text, 100, 100) == (text, "", 0)
    head, tail, omitted = head_tail(O200K, text, 1, 100)
    assert (head + tail, omitted) == (text, 0)
    assert head_tail(O200K, text, -3, -3) == ("", "", O200K.count(text))
    assert head_tail(O200K, "", 5, 5) == ("", "", 0)


def test_a_split_character_is_never_cut() -> None:
    # A rare CJK character is several byte tokens: a cut inside backs off to the boundary.
    text = "𠜎" * 10
    tokens = O200K.encoding.encode_ordinary(text)
    assert len(tokens) > 10
    for limit in range(len(tokens) + 1):
        head, tail, omitted = head_tail(O200K, text, limit, limit)
        assert "\ufffd" not in head + tail
        assert text.startswith(head)
        assert text.endswith(tail)
        assert omitted >= 0


def test_lone_surrogates_slice_the_input_itself() -> None:
    text = "ab\ud800cd" * 20
    head, tail, _ = head_tail(O200K, text, 5, 5)
    assert text.startswith(head)
    assert text.endswith(tail)


def test_estimating_tokenizer_cuts_the_proxy_at_limit_over_factor() -> None:
    est = EstimatingTokenizer(O200K, 2.0)
    text = " ".join(f"w{i}" for i in range(200))
    head, tail, omitted = head_tail(est, text, 10, 7)
    assert O200K.count(head) == 5
    assert O200K.count(tail) == 3
    assert est.count(head) <= 10
    assert est.count(tail) <= 7
    assert omitted == 2 * (O200K.count(text) - 8)


def test_generic_tokenizer_uses_count() -> None:
    tok = CharTokenizer()
    assert isinstance(tok, Tokenizer)
    assert head_tail(tok, "abcdefghij", 3, 2) == ("abc", "ij", 5)
    assert head_tail(tok, "abc", 2, 5) == ("ab", "c", 0)
    result = truncate_middle(tok, "x" * 100, 40, lambda n: f"<{n}>")
    assert len(result) <= 40
    assert result.startswith("x")
    assert result.endswith("x")


def _hf_tokenizers(tmp_path: Path) -> list[HFTokenizer]:
    from tokenizers import Tokenizer as Lib
    from tokenizers import decoders, models, pre_tokenizers, trainers

    byte_level = Lib(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    byte_level.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    byte_level.train_from_iterator(["hello world, the quick brown fox 中文"] * 5, trainer)
    words = Lib(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(["hello world"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    out = []
    for name, lib in (("bytes", byte_level), ("words", words)):
        path = tmp_path / f"{name}.json"
        lib.save(str(path))
        out.append(HFTokenizer.from_file(path, name=name))
    return out


@pytest.fixture(scope="module")
def hf_tokenizers(tmp_path_factory: pytest.TempPathFactory) -> list[HFTokenizer]:
    return _hf_tokenizers(tmp_path_factory.mktemp("hf"))


# HFTokenizer.count itself rejects lone surrogates (TypeError from the Rust side).
_NO_SURROGATES = st.characters(exclude_categories=("Cs",))


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(st.one_of(_NO_SURROGATES, st.sampled_from(_ODD))), max_tokens=st.integers(0, 80)
)
def test_truncate_middle_fits_with_hf_tokenizers(
    hf_tokenizers: list[HFTokenizer], text: str, max_tokens: int
) -> None:
    for tok in hf_tokenizers:
        result = truncate_middle(tok, text, max_tokens, _marker)
        assert tok.count(result) <= max_tokens
        pieces = _pieces(result)
        if pieces is not None and result != text:
            assert text.startswith(pieces[0])
            assert text.endswith(pieces[1])


def test_hf_tokenizers_use_offsets(tmp_path: Path) -> None:
    text = "hello 🎉 world 中文 the quick brown fox " * 5
    for tok in _hf_tokenizers(tmp_path):
        for limit in range(0, 40, 3):
            head, tail, omitted = head_tail(tok, text, limit, limit)
            assert text.startswith(head)
            assert text.endswith(tail)
            assert "\ufffd" not in head + tail
            if omitted == 0:
                assert head + tail == text
        result = truncate_middle(tok, text, 30, _marker)
        assert tok.count(result) <= 30
    split = _hf_tokenizers(tmp_path)[0]
    encoding = split.tokenizer.encode("🎉", add_special_tokens=False)
    assert len(encoding.ids) > 1  # the emoji is split over byte tokens, so offsets repeat
    assert head_tail(split, "a🎉b", 2, 0)[0] == "a"


def test_truncate_middle_keeps_a_text_that_fits() -> None:
    assert truncate_middle(O200K, "hello world", 2, _marker) == "hello world"
    assert truncate_middle(O200K, "hello world", 0, _marker) == ""


def test_truncate_middle_tiny_budget_keeps_only_the_marker_prefix() -> None:
    text = "lorem ipsum " * 100
    result = truncate_middle(O200K, text, 4, _marker)
    assert O200K.count(result) <= 4
    assert _marker(O200K.count(text)).startswith(result)


def test_truncate_middle_head_share() -> None:
    text = " ".join(f"w{i}" for i in range(500))
    result = truncate_middle(O200K, text, 100, _marker, head_share=1.0)
    pieces = _pieces(result)
    assert pieces is not None
    assert pieces[1] == ""
    assert O200K.count(result) <= 100


@pytest.mark.parametrize(
    "tok", [O200K, CL100K, EstimatingTokenizer(O200K, 1.3)], ids=["o200k", "cl100k", "est"]
)
@settings(max_examples=300, deadline=None)
@given(text=TEXT, max_tokens=st.integers(0, 120), share=st.floats(0.0, 1.0))
def test_truncate_middle_always_fits(
    tok: Tokenizer, text: str, max_tokens: int, share: float
) -> None:
    result = truncate_middle(tok, text, max_tokens, _marker, head_share=share)
    assert tok.count(result) <= max_tokens
    if tok.count(text) <= max_tokens:
        assert result == text
        return
    pieces = _pieces(result)
    if pieces is not None:
        head, tail = pieces
        assert text.startswith(head)
        assert text.endswith(tail)
        assert len(head) + len(tail) < len(text)


@pytest.mark.parametrize("tok", [O200K, CL100K], ids=["o200k", "cl100k"])
@settings(max_examples=300, deadline=None)
@given(text=TEXT, head=st.integers(0, 80), tail=st.integers(0, 80))
def test_head_tail_is_a_prefix_and_a_suffix(
    tok: Tokenizer, text: str, head: int, tail: int
) -> None:
    h, t, omitted = head_tail(tok, text, head, tail)
    assert text.startswith(h)
    assert text.endswith(t)
    assert len(h) + len(t) <= len(text)
    assert omitted >= 0
    if not any("\ud800" <= c <= "\udfff" for c in text):
        assert omitted <= tok.count(text)
    if omitted == 0:
        assert h + t == text
