"""Token counting: offline tokenizers, provider framing rules, caching and calibration.

Core: may import ``session`` and ``errors`` only.
"""

from ctxbudget.tokens.backends import (
    ESTIMATE_FACTORS,
    EstimatingTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
)
from ctxbudget.tokens.calibration import Calibrator
from ctxbudget.tokens.count import TokenCount
from ctxbudget.tokens.counter import CacheInfo, TokenCounter
from ctxbudget.tokens.encodings import BPE_SHA256, EncodingName, load_encoding
from ctxbudget.tokens.framing import (
    FRAMINGS,
    Family,
    Framing,
    Tally,
    ToolRule,
    count_item,
    count_tools,
    get_framing,
    request_overhead,
)
from ctxbudget.tokens.remote import RemoteCounter, count_remote
from ctxbudget.tokens.resolve import openai_framing, tokenizer_from_spec

__all__ = [
    "BPE_SHA256",
    "ESTIMATE_FACTORS",
    "FRAMINGS",
    "CacheInfo",
    "Calibrator",
    "EncodingName",
    "EstimatingTokenizer",
    "Family",
    "Framing",
    "HFTokenizer",
    "RemoteCounter",
    "Tally",
    "TiktokenTokenizer",
    "TokenCount",
    "TokenCounter",
    "Tokenizer",
    "ToolRule",
    "count_item",
    "count_remote",
    "count_tools",
    "get_framing",
    "load_encoding",
    "openai_framing",
    "request_overhead",
    "tokenizer_from_spec",
]
