"""Scripted pytest reports for the demo session (nothing is run).

The test suite is modelled on the package: one ``tests/test_<module>.py`` per module, one
test per public function. A report lists them the way pytest does and shows the failures
the story needs, as real tracebacks through the package's real source lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ctxbudget.demo._source import Def, Scenario, Source, shown, stem

_WIDTH = 80
_SEP = "_ " * 39 + "_"
_PER_FILE = 14


def rule(text: str, char: str = "=") -> str:
    """A pytest title line: ``text`` centred in ``char``."""
    return f" {text} ".center(_WIDTH, char) if text else char * _WIDTH


def snake(name: str) -> str:
    """``ContextManager`` → ``context_manager``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Suite:
    """The test files and their tests, in collection order."""

    def __init__(self, source: Source, extra: Mapping[str, list[str]]) -> None:
        self.files: dict[str, list[str]] = {}
        for path in source.files:
            names = dict.fromkeys(
                f"test_{d.name.strip('_')}"
                for d in source.defs(path)
                if not d.name.startswith("__")
            )
            if names:
                self.files[f"tests/test_{stem(path)}.py"] = list(names)[:_PER_FILE]
        for file, tests in extra.items():
            self.files.setdefault(file, []).extend(t for t in tests if t not in self.files[file])
        self.files = dict(sorted(self.files.items()))

    def ids(self) -> list[str]:
        """Every node id."""
        return [f"{file}::{name}" for file, names in self.files.items() for name in names]

    def position(self, node: str) -> int:
        """Where ``node`` sits in its file (its line there is derived from this)."""
        file, name = node.split("::")
        return self.files[file].index(name)

    def run(
        self, select: str = "", failures: Mapping[str, str] | None = None, *, verbose: bool = False
    ) -> str:
        """The report of ``pytest [-v] [select]``: ``select`` is a node id, ``-k`` words
        joined by `` or ``, or empty for the whole suite."""
        failures = failures or {}
        every = self.ids()
        if "::" in select:
            chosen = [n for n in every if n == select]
        elif select:
            words = select.split(" or ")
            chosen = [n for n in every if any(w in n for w in words)]
        else:
            chosen = every
        failed = [n for n in chosen if n in failures]
        head = f"collected {len(every)} items"
        if len(chosen) < len(every):
            head += f" / {len(every) - len(chosen)} deselected / {len(chosen)} selected"
        lines = [
            rule("test session starts"),
            "platform linux -- Python 3.11.7, pytest-8.3.4, pluggy-1.5.0",
            "rootdir: /workspace/ctxbudget",
            "configfile: pyproject.toml",
            head,
            "",
        ]
        done = 0
        for file, names in self.files.items():
            mine = [f"{file}::{n}" for n in names if f"{file}::{n}" in chosen]
            for node in mine if verbose else []:
                done += 1
                word = "FAILED" if node in failed else "PASSED"
                lines.append(_right(f"{node} {word}", done, len(chosen)))
            if mine and not verbose:
                done += len(mine)
                marks = "".join("F" if n in failed else "." for n in mine)
                lines.append(_right(f"{file} {marks}", done, len(chosen)))
        lines.append("")
        if failed:
            lines.append(rule("FAILURES"))
            lines.extend(failures[n] for n in failed)
            lines.append(rule("short test summary info"))
            lines.extend(f"FAILED {n} - {_last_error(failures[n])}" for n in failed)
        seconds = 0.4 + 0.061 * len(chosen) + 1.3 * len(failed)
        tally = ", ".join(
            part
            for part in (
                f"{len(failed)} failed" if failed else "",
                f"{len(chosen) - len(failed)} passed" if len(chosen) > len(failed) else "",
                f"{len(every) - len(chosen)} deselected" if len(chosen) < len(every) else "",
            )
            if part
        )
        lines.append(rule(f"{tally} in {seconds:.2f}s"))
        return "\n".join(lines)


def _right(text: str, done: int, total: int) -> str:
    percent = f"[{100 * done // max(total, 1):3d}%]"
    return f"{text}{' ' * max(1, _WIDTH - len(text) - len(percent))}{percent}"


def _last_error(block: str) -> str:
    errors = [line[1:].strip() for line in block.splitlines() if line.startswith("E ")]
    return errors[-1] if errors else "failed"


def message(
    source: Source, path: str, start: int, end: int, values: Mapping[str, str] | None = None
) -> str:
    """The text of the ``raise`` at ``start..end``: its string literals joined, and with
    ``values`` its fields filled as the exception would show them (others become ``3``)."""
    text = "\n".join(source.lines(path)[start - 1 : end])
    literal = "".join(re.findall(r"[rfbu]*\"((?:[^\"\\]|\\.)*)\"", text))
    if values is None:
        return literal

    def fill(match: re.Match[str]) -> str:
        expr, conversion = match.group(1).strip(), match.group(2)
        value = values.get(expr, "3")
        return repr(value) if conversion == "!r" else value

    return re.sub(r"\{([^{}!:]+)(![rsa])?(?::[^{}]*)?\}", fill, literal)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _frame(source: Source, found: Def, line: int, args: str, *, last: bool = False) -> list[str]:
    """One long-style frame: arguments, the source up to ``line``, then ``path:line:``."""
    body = source.lines(found.path)[found.start - 1 : line]
    indent = _indent(body[0])
    rows = [args, ""]
    for number, text in enumerate(body, start=found.start):
        rows.append((">   " if number == line else "    ") + text[indent:])
    tail = f"{shown(found.path)}:{line}: "
    return [*rows, "", tail if not last else tail.rstrip()]


def owner_repr(found: Def) -> str:
    """How pytest shows ``self`` of a method."""
    module = found.path.removesuffix(".py").replace("/", ".")
    return f"<ctxbudget.{module}.{found.owner} object at 0x7f3a9c2d{len(found.path):02x}e0>"


def scenario_test(sc: Scenario, fixture: str) -> list[str]:
    """The failing test's source: a fixture repeating one id, and the call."""
    iterable = f"`{sc.arg}`s"
    name = f"{sc.caller.name.strip('_')}_with_a_repeated_{sc.arg}"
    return [
        "@pytest.fixture",
        f"def repeated_{sc.arg}({fixture}):",
        f'    """Arguments for `{sc.caller.name}` that list one {sc.arg} twice."""',
        f"    return twice({fixture}, first_{sc.arg}({fixture}))",
        "",
        "",
        f"def test_{name}({fixture}, repeated_{sc.arg}):",
        f'    """Repeated {iterable} are handled once, and the session stays consistent."""',
        f"    {fixture}.{sc.caller.name}(*repeated_{sc.arg})",
        f"    assert consistent({fixture})",
    ]


def scenario_failure(source: Source, sc: Scenario, node: str, line: int, value: str) -> str:
    """The traceback of the failing test: test → caller's loop → callee's ``raise``."""
    name = node.split("::")[1]
    fixture = snake(sc.caller.owner or stem(sc.caller.path))
    test = scenario_test(sc, fixture)
    rows = [
        rule(name, "_"),
        "",
        f"{fixture} = {owner_repr(sc.caller)}",
        f"repeated_{sc.arg} = (...)",
        "",
    ]
    rows += ["    " + t for t in test[6:8]] + [
        ">   " + test[8],
        "",
        f"{node.split('::', maxsplit=1)[0]}:{line}: ",
        _SEP,
        "",
    ]
    caller_args = ", ".join(
        f"{p} = {owner_repr(sc.caller) if p == 'self' else '...'}" for p in sc.caller.params
    )
    rows += _frame(source, sc.caller, sc.call_line, caller_args)
    rows += [_SEP, ""]
    callee_args = ", ".join(
        f"{p} = {owner_repr(sc.callee) if p == 'self' else repr(value)}" for p in sc.callee.params
    )
    frame = _frame(source, sc.callee, sc.raise_line, callee_args, last=True)
    text = message(source, sc.callee.path, sc.raise_line, sc.raise_end, {sc.arg: value})
    lines = source.lines(sc.callee.path)
    pad = " " * (_indent(lines[sc.raise_line - 1]) - _indent(lines[sc.callee.start - 1]))
    frame.insert(-2, f"E   {pad}{error_path(source, sc.error)}: {text}")
    frame[-1] += f" {sc.error}"
    return "\n".join(rows + frame + [""])


def error_path(source: Source, error: str) -> str:
    """``UsageError`` → ``ctxbudget.errors.UsageError`` (where its class is defined)."""
    for path in source.files:
        if re.search(rf"^class {error}\b", source.files[path], re.MULTILINE):
            return f"ctxbudget.{path.removesuffix('.py').replace('/', '.')}.{error}"
    return error


def contract_failure(source: Source, sc: Scenario, node: str, line: int) -> str:
    """The callee's own test, once the callee stops raising: ``DID NOT RAISE``."""
    name = node.split("::")[1]
    fixture = snake(sc.callee.owner or stem(sc.callee.path))
    return "\n".join(
        [
            rule(name, "_"),
            "",
            f"{fixture} = {owner_repr(sc.callee)}",
            "",
            f"    def {name}({fixture}):",
            f"        with pytest.raises({sc.error}):",
            f'>           {fixture}.{sc.callee.name}("never-added")',
            f"E           Failed: DID NOT RAISE <class '{error_path(source, sc.error)}'>",
            "",
            f"{node.split('::', maxsplit=1)[0]}:{line}: Failed",
            "",
        ]
    )


_SITE = ".venv/lib/python3.11/site-packages"
NETWORK_ERROR = (
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='openaipublic.blob.core."
    "windows.net', port=443): Max retries exceeded with url: /encodings/o200k_base.tiktoken "
    '(Caused by NameResolutionError("<urllib3.connection.HTTPSConnection object at '
    "0x7f3a9b1e4d10>: Failed to resolve 'openaipublic.blob.core.windows.net' ([Errno -2] "
    'Name or service not known)"))'
)


def network_failure(node: str, line: int) -> str:
    """A test that asks tiktoken itself for an encoding: it downloads, and there is no network."""
    name = node.split("::")[1]
    return "\n".join(
        [
            rule(name, "_"),
            "",
            f"    def {name}():",
            '        """Our copied split pattern and special tokens equal tiktoken\'s own."""',
            '>       reference = tiktoken.get_encoding("o200k_base")',
            "",
            f"{node.split('::', maxsplit=1)[0]}:{line}: ",
            _SEP,
            f"{_SITE}/tiktoken/registry.py:86: in get_encoding",
            "    enc = Encoding(**constructor())",
            f"{_SITE}/tiktoken_ext/openai_public.py:96: in o200k_base",
            "    mergeable_ranks = load_tiktoken_bpe(",
            f"{_SITE}/tiktoken/load.py:161: in load_tiktoken_bpe",
            "    contents = read_file_cached(tiktoken_bpe_file, expected_hash)",
            f"{_SITE}/tiktoken/load.py:66: in read_file_cached",
            "    contents = read_file(blobpath)",
            f"{_SITE}/tiktoken/load.py:17: in read_file",
            "    resp = requests.get(blobpath)",
            f"{_SITE}/requests/api.py:73: in get",
            '    return request("get", url, params=params, **kwargs)',
            _SEP,
            "",
            f"E   {NETWORK_ERROR}",
            "",
            f"{_SITE}/requests/adapters.py:700: ConnectionError",
            "",
        ]
    )
