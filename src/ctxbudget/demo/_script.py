"""The demo agent's story: what it does at each model call, and what it says.

A coding agent fixes a bug in the package the way SWE-style agents do: it orients (lists,
greps), reproduces the failure, reads the code on the traceback, chases a second failure
that turns out to be the sandbox's (no network, a command that times out), tries a wrong
fix that breaks another test and reverts it, fixes the root cause, audits the package for
the same pattern (:mod:`ctxbudget.demo._audit`, as long as ``turns`` asks), verifies and
sums up. The bug is found in the real source
(:func:`~ctxbudget.demo._source.find_scenario`): a loop handing each id to another
module's method that raises on an id it no longer has. The failing test and its
traceback are scripted; every file, line and function they name is real.
"""

from __future__ import annotations

from collections.abc import Iterator

from ctxbudget.demo._agent import LOOP, NETWORK_TEST, Agent, Step, plural, qualname
from ctxbudget.demo._audit import audit
from ctxbudget.demo._pytest import (
    NETWORK_ERROR,
    contract_failure,
    error_path,
    message,
    scenario_test,
    snake,
)
from ctxbudget.demo._source import ROOT, Scenario, shown, stem

__all__ = ["CLOSING", "Story"]

CLOSING = 5
"""Calls after the audit: a last look, the full suite, linters, the diff, the status."""
_FOLLOW = 6
"""At most this many files are read while following where the bad input comes from."""
_TIMEOUT = "Error: command timed out after 120 seconds (no output). The process was killed."


class Story(Agent):
    """The agent's story; :meth:`steps` yields each tool-calling call, :meth:`answer` the
    final one."""

    def task(self) -> str:
        """The user's request."""
        if self.sc is None:
            return (
                "Task: audit the `ctxbudget` package for loops that hand each id to a method "
                "that raises on an unknown id, fix any you find without editing tests, keep "
                "the suite green, and summarise what you changed."
            )
        sc = self.sc
        loop = self.src.lines(sc.caller.path)[sc.loop_line - 1].strip()
        return (
            f"Bug report: when `{qualname(sc.caller)}` gets the same {sc.arg} twice "
            f"(through `{loop.removeprefix('for ').rstrip(':')}`), it fails half-way with "
            f"{sc.error} instead of handling it once, and the session is left inconsistent. "
            f"The regression test `{self.target}` reproduces it. Find the root cause and fix "
            "it in the library (do not edit tests), keep the rest of the suite green, and "
            "summarise what you changed."
        )

    def title(self, turns: int) -> str:
        """A one-line label of the session."""
        what = f"fixing {qualname(self.sc.caller)}" if self.sc else "auditing ctxbudget"
        return f"scripted coding agent {what} ({turns} calls)"

    def steps(self, turns: int) -> Iterator[Step]:
        """The tool-calling steps of a ``turns``-call session (the answer is not one)."""
        yield from self._orient()
        if self.sc is not None:
            yield from self._reproduce(self.sc)
        yield from self._network()
        if self.sc is not None:
            yield from self._follow(self.sc)
            yield from self._dead_end(self.sc)
            yield from self._fix(self.sc)
        middle = audit(self)
        while self.now < turns - CLOSING:
            yield next(middle)
        yield from self._closing()

    def _orient(self) -> Iterator[Step]:
        tests = "\n".join(["conftest.py", *(f.removeprefix("tests/") for f in self.suite.files)])
        yield Step(
            "I'll start with the lay of the land: the package under src/ctxbudget and the tests.",
            [
                ("list_dir", {"path": ROOT}, self.src.listing("")),
                ("list_dir", {"path": "tests"}, tests),
            ],
        )
        if self.sc is None:
            yield Step("First, the state of the test suite.", [self.tests()])

    def _reproduce(self, sc: Scenario) -> Iterator[Step]:
        caller, callee, a, b = sc.caller, sc.callee, sc.caller.path, sc.callee.path
        folders = [n for n in self.src.listing("").splitlines() if n.endswith("/")]
        yield Step(
            f"{len(self.suite.files)} test files next to a package with {len(folders)} "
            f"subpackages ({', '.join(folders[:4])}...). First, reproduce the failure with "
            f"`{self.target}`.",
            [self.tests(self.target)],
        )
        loop, call = (self.src.lines(a)[n - 1].strip() for n in (sc.loop_line, sc.call_line))
        text = message(self.src, b, sc.raise_line, sc.raise_end, {sc.arg: self.value})
        grep, hits = self.grep(rf"def {caller.name}\b")
        yield Step(
            f"Reproduced: `{sc.error}: {text}`. The traceback goes "
            f"{self.target.split('::')[0]} → `{caller.name}` at {shown(a)}:{sc.call_line} → "
            f"`{callee.name}` at {shown(b)}:{sc.raise_line}. The failing call is `{call}` "
            f"inside `{loop}`. Let me see every `def {caller.name}` in the package first.",
            [grep],
        )
        others = ", ".join(f"{shown(p)}:{n}" for p, n, _ in hits if p != a)
        yield Step(
            f"{plural(len(hits), 'hit')}; the one on the traceback is {shown(a)}:"
            f"{caller.start} (`{qualname(caller)}`){', the others ' + others if others else ''}"
            f". I need the whole class around line {sc.call_line}, so I'll read {shown(a)} "
            "in full.",
            [self.read(a)],
        )
        grep, hits = self.grep(rf"def {callee.name}\b")
        yield Step(
            f"In `{caller.name}` (lines {caller.start}-{caller.end} of {shown(a)}), each "
            f"`{sc.arg}` of the loop at line {sc.loop_line} goes to `{call}` one at a time, "
            f"with nothing checking for repeats. Now the callee: which `{callee.name}` "
            "methods exist?",
            [grep],
        )
        self.echoes += [
            f"(The early `def {callee.name}` grep also listed {shown(p)}:{n}.)"
            for p, n, _ in hits
            if p != b
        ][:3]
        yield Step(
            f"{plural(len(hits), 'definition')} of `{callee.name}`; the traceback's is "
            f"{shown(b)}:{callee.start} (`{qualname(callee)}`). Reading {shown(b)}.",
            [self.read(b)],
        )
        yield from self._errors(sc)

    def _errors(self, sc: Scenario) -> Iterator[Step]:
        grep, hits = self.grep(rf"raise {sc.error}\(")
        yield Step(
            f"`{qualname(sc.callee)}` raises `{sc.error}` at line {sc.raise_line} when the "
            f"`{sc.arg}` is not there, so a second `{sc.callee.name}` of the same id must "
            f"fail. How widely is `{sc.error}` raised like that?",
            [grep],
        )
        files = sorted(
            dict.fromkeys(p for p, _, _ in hits), key=lambda p: -sum(h[0] == p for h in hits)
        )
        module = error_path(self.src, sc.error).removeprefix("ctxbudget.").rsplit(".", 1)[0]
        home = module.replace(".", "/") + ".py"
        if home in self.src.files:
            yield Step(
                f"{len(hits)} `raise {sc.error}(` sites in {len(files)} files, most in "
                f"{', '.join(shown(p) for p in files[:3])}. `{sc.error}` is defined in "
                f"{shown(home)}; let me read the error tree to see what it promises.",
                [self.read(home)],
            )
        self.echoes.append(
            f"(The first traceback ended at {shown(sc.callee.path)}:{sc.raise_line}, "
            f"`{sc.error}` for {self.value!r}.)"
        )
        yield Step(
            "Before going deeper, let me run the whole suite to see what else fails on main.",
            [self.tests()],
        )

    def _network(self) -> Iterator[Step]:
        failed = [n for n in self.suite.ids() if n in self.failing]
        others = ", ".join(f"`{n}`" for n in failed if n != NETWORK_TEST) or "nothing else"
        grep, hits = self.grep(r"get_encoding")
        yield Step(
            f"{len(failed)} failed of {len(self.suite.ids())}. Besides {others}, "
            f"`{NETWORK_TEST}` fails with `requests.exceptions.ConnectionError` from "
            "tiktoken/load.py:17 (`read_file`), downloading o200k_base.tiktoken. Where does "
            "the package touch tiktoken's downloader?",
            [grep],
        )
        path = hits[0][0] if hits else next(iter(self.src.files))
        where = f"{shown(path)}:{hits[0][1]} mentions it" if hits else "Nothing calls it"
        yield Step(f"{where}. Reading {shown(path)}.", [self.read(path)])
        loader = next((d for d in self.src.defs(path) if "load" in d.name), None)
        named = f"its loader `{loader.name}` at line {loader.start}" if loader else "it"
        cmd = "python -c \"import tiktoken; tiktoken.get_encoding('o200k_base')\""
        out = "Traceback (most recent call last):\n  ...\n" + NETWORK_ERROR.split(" (Caused")[0]
        yield Step(
            f"{shown(path)} avoids the downloader ({named} works offline). The failing test "
            "must call `tiktoken.get_encoding` directly. Does the sandbox have network?",
            [self.bash(cmd, out)],
        )
        cache = "ls: cannot access '/root/.cache/tiktoken': No such file or directory"
        yield Step(
            "Same `ConnectionError`: no DNS for openaipublic.blob.core.windows.net. Is there "
            "a cached BPE file tiktoken could use instead?",
            [self.bash("ls ~/.cache/tiktoken", cache)],
        )
        self.echoes.append(f"(`{NETWORK_TEST}` still needs the network: tiktoken/load.py:17.)")

    def _follow(self, sc: Scenario) -> Iterator[Step]:
        a, test_file, start = sc.caller.path, self.target.split("::")[0], self.line(self.target)
        lines = scenario_test(sc, snake(sc.caller.owner or stem(a)))
        source = "\n".join(f"{start + i:6d}\t{line}" for i, line in enumerate(lines))
        args = {"path": test_file, "start_line": start, "end_line": start + len(lines) - 1}
        yield Step(
            f"No cache, so `{NETWORK_TEST}` is the sandbox (no network), not "
            f"`{qualname(sc.callee)}`; I'll note it and move on. Now the failing test in "
            f"{test_file} around line {start + 8}.",
            [("read_file", args, source)],
        )
        match = LOOP.match(self.src.lines(a)[sc.loop_line - 1])
        attr = match.group(2).split(".")[-1] if match else sc.arg
        grep, hits = self.grep(rf"\b{attr}=")
        yield Step(
            f"The test hands `{sc.caller.name}` a `repeated_{sc.arg}`. Who builds `{attr}` "
            "lists in the package, and can they repeat an id?",
            [grep],
        )
        unread = [p for p in dict.fromkeys(p for p, _, _ in hits) if p not in self.seen]
        unread = unread[:_FOLLOW]
        first = {p: (n, t.strip()) for p, n, t in reversed(hits)}
        while unread:
            small = len(unread) > 1 and all(len(self.src.lines(p)) < 200 for p in unread[:2])
            pair, unread = unread[: 1 + small], unread[1 + small :]
            said = "; ".join(f"{shown(p)}:{first[p][0]} has `{first[p][1][:70]}`" for p in pair)
            yield Step(
                f"{said}. Reading {' and '.join(shown(p) for p in pair)}.",
                [self.read(p) for p in pair],
            )
        guess = f"{stem(a)}/{sc.caller.name}.py"
        while guess in self.src.files:
            guess = "_" + guess
        missing = f"Error: [Errno 2] No such file or directory: '{shown(guess)}'"
        yield Step(
            f"They build `{attr}` from their own lists. Is there a module dedicated to "
            f"`{sc.caller.name}`? Trying {shown(guess)}.",
            [("read_file", {"path": shown(guess)}, missing)],
        )

    def _dead_end(self, sc: Scenario) -> Iterator[Step]:
        b, callee = sc.callee.path, sc.callee
        lines = self.src.lines(b)
        statement = "\n".join(lines[sc.raise_line - 1 : sc.raise_end])
        first = lines[sc.raise_line - 1]
        indent = first[: len(first) - len(first.lstrip())]
        lenient = f"{indent}return None  # already gone: nothing to {callee.name}"
        above = lines[sc.raise_line - 2].strip() if sc.raise_line > 1 else ""
        wrong = "\n".join([above, *(t[4:] for t in statement.splitlines())]).strip("\n")
        if wrong in self.src.files[b]:  # it must miss, as a mis-indented old_str does
            wrong += " "
        yield Step(
            f"No such file: `{sc.caller.name}` lives in {shown(sc.caller.path)} only. "
            f"Hypothesis: `{qualname(callee)}` is too strict. If it returned quietly for an "
            f"`{sc.arg}` already gone, a repeat would be harmless. Changing line "
            f"{sc.raise_line} of {shown(b)}.",
            [self.edit(b, wrong, lenient)],
        )
        yield Step(
            f"The whitespace was off. Let me view the exact lines of `{callee.name}` "
            f"({callee.start}-{callee.end}).",
            [self.region(b, callee.start, callee.end)],
        )
        yield Step(
            f"Now with the right indentation ({len(indent)} spaces).",
            [self.edit(b, statement, lenient)],
        )
        yield Step(f"Re-running `{self.target}`.", [self.tests(self.target)])
        del self.failing[self.target]
        self.failing[self.contract] = contract_failure(
            self.src, sc, self.contract, self.line(self.contract) + 3
        )
        yield Step("It passes. Now the whole suite.", [self.tests()])
        yield Step(
            f"That broke `{self.contract}`: `{callee.name}` is meant to raise `{sc.error}` "
            f"for an unknown {sc.arg}, and callers rely on it. A lenient `{callee.name}` is "
            "the wrong fix; reverting.",
            [self.edit(b, lenient, statement)],
        )
        del self.failing[self.contract]
        self.failing[self.target] = self.scenario_failure(sc)
        self.echoes.append(f"(`{self.contract}` is why `{callee.name}` must keep raising.)")
        yield Step(
            f"Reverted. Checking tests/test_{stem(b)}.py is green again.",
            [self.tests(f"test_{stem(b)}.py")],
        )

    def _fix(self, sc: Scenario) -> Iterator[Step]:
        a, caller = sc.caller.path, sc.caller
        loop = self.src.lines(a)[sc.loop_line - 1]
        match = LOOP.match(loop)
        iterable = match.group(2) if match else sc.arg
        yield Step(
            f"Back to `{caller.name}` in {shown(a)} (I read it at call {self.seen.get(a, 1)}): "
            f"the loop at line {sc.loop_line} is where a repeated {sc.arg} reaches "
            f"`{sc.callee.name}` twice. Looking at the function again.",
            [self.region(a, caller.start, caller.end)],
        )
        cmd = f"for i in $(seq 30); do python -m pytest -q -x -k {caller.name} || break; done"
        yield Step(
            "Is the failure deterministic? Running the related tests 30 times in a loop.",
            [self.bash(cmd, _TIMEOUT)],
        )
        fixed = loop.replace(f" in {iterable}:", f" in dict.fromkeys({iterable}):")
        comment = "  # listed twice, handled once"
        fixed += comment if len(fixed) + len(comment) <= 100 else ""
        yield Step(
            "Timed out; no matter: it raises on the second call every time. Root cause: "
            f"`{caller.name}` trusts `{iterable}` to list each {sc.arg} once, but nothing "
            f"guarantees it, and `{sc.callee.name}` rightly refuses a second call. Fix at "
            f"line {sc.loop_line}: iterate `dict.fromkeys({iterable})`, which keeps the "
            "order and drops repeats.",
            [self.edit(a, loop, fixed)],
        )
        self.fixed = True
        del self.failing[self.target]
        yield Step(f"Re-running `{self.target}`.", [self.tests(self.target)])
        self.echoes.append(f"({shown(a)}:{sc.loop_line} now drops repeated `{sc.arg}`s.)")
        words = f"test_{stem(a)}.py or test_{stem(sc.callee.path)}.py"
        yield Step(f"Passes. Both modules' tests: `{words}`.", [self.tests(words)])

    def _closing(self) -> Iterator[Step]:
        sc = self.sc
        yield Step(
            f"Audit done: {plural(len(self.audited), 'loop')} in "
            f"{plural(len(set(self.audited)), 'file')}, {len(self.flagged)} noted for follow-up. "
            + (
                "A last look at my change and at the callee I reverted."
                if sc
                else "The suite once more."
            ),
            [
                self.region(sc.caller.path, sc.loop_line - 6, sc.loop_line + 6),
                self.region(sc.callee.path, sc.callee.start, sc.callee.end),
            ]
            if sc
            else [self.tests()],
        )
        yield Step("Full suite, verbose, for the record.", [self.tests(verbose=True)])
        files = len(self.src.files)
        yield Step(
            "Only the network test fails. Linters, format and types, all at once:",
            [
                self.bash("ruff check src tests", "All checks passed!"),
                self.bash("ruff format --check src", f"{files} files already formatted"),
                self.bash("mypy src", f"Success: no issues found in {files} source files"),
            ],
        )
        yield Step("Clean. The diff:", [self.bash("git diff", self.src.diff())])
        status = "\n".join(f" M {shown(p)}" for p in self.src.changed())
        yield Step("And nothing else changed:", [self.bash("git status --short", status)])

    def answer(self) -> str:
        """The final message: what was found, changed and left."""
        network = (
            f"`{NETWORK_TEST}` fails only because the sandbox has no network (tiktoken/load.py:17 "
            "downloads o200k_base.tiktoken); the package's own loader works offline."
        )
        flagged = (
            f"{plural(len(self.flagged), 'loop')} feed a method that refuses repeats by "
            f"design, left as is and worth a follow-up test: {'; '.join(self.flagged)}."
            if self.flagged
            else "None of them has the same problem."
        )
        audited = (
            f"{plural(len(self.audited), 'loop')} in {plural(len(set(self.audited)), 'file')}."
        )
        sc = self.sc
        if sc is None or not self.fixed:
            parts = ["Summary (stopped at the call limit, nothing fixed yet)."]
            if self.seen:
                parts[0] += f" I read {plural(len(self.seen), 'file')} of the package."
            if sc is not None and self.now > 2:
                parts.append(
                    f"`{self.target}` fails: `{qualname(sc.caller)}` hands each `{sc.arg}` of "
                    f"its loop ({shown(sc.caller.path)}:{sc.loop_line}) to "
                    f"`{qualname(sc.callee)}`, which raises `{sc.error}` at "
                    f"{shown(sc.callee.path)}:{sc.raise_line}; that loop is the suspect."
                )
            if self.audited:
                parts.append(f"Audit so far: {audited} {flagged}")
            if self.now > 10:
                parts.append(network)
            return "\n\n".join(parts)
        return (
            f"Summary.\n\nRoot cause: `{qualname(sc.caller)}` ({shown(sc.caller.path)}:"
            f"{sc.caller.start}) hands every `{sc.arg}` of its loop (line {sc.loop_line}) to "
            f"`{qualname(sc.callee)}`, which raises `{sc.error}` at {shown(sc.callee.path)}:"
            f"{sc.raise_line} for an id it no longer has; a repeated id therefore failed "
            "half-way, after earlier steps had already run.\n\nFix: the loop now iterates "
            f"`dict.fromkeys(...)`, so a repeated {sc.arg} is handled once, in order. "
            f"`{self.target}` passes.\n\nTried and reverted: making `{sc.callee.name}` "
            f"lenient broke `{self.contract}`, which pins its contract.\n\nAudit: {audited} "
            f"{flagged}\n\nStill failing, not ours: {network} ruff and mypy are clean."
        )
