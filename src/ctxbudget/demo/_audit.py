"""The demo agent's audit: the elastic middle of the session, as long as ``turns`` asks.

After the fix, the agent looks for the same pattern elsewhere: every file with a loop over
a plain name (the loops that feed a method that raises first), then the callers of every
method that raises, then a review of the longer functions, with test runs in between.
Reads here are mostly of files not opened yet (whole, so some are large) and of regions
opened long before; thoughts name the previous result and, now and then, an early one.
"""

from __future__ import annotations

from collections.abc import Iterator

from ctxbudget.demo._agent import LOOP, Agent, Step, plural, qualname
from ctxbudget.demo._pytest import message
from ctxbudget.demo._source import Def, shown, stem

__all__ = ["audit"]

_WHOLE = 600
"""Files up to this many lines are read whole, longer ones around their loops."""
_CALM = (
    "none of them feeds a method that raises on a repeat (the first is `{first}`)",
    "`{first}` and the rest only build values, nothing that raises",
    "harmless: line {line} `{first}` collects, it does not remove",
    "no call in these bodies can refuse an id twice",
)
_REVIEW = (
    "Reviewing the longer functions too. `{q}` ({at}; file last open at {when}): {note}.",
    "Next, `{q}` ({at}): {note}; reading it again.",
    "`{q}` at {at}: {note}. Checking its body.",
)

Risk = tuple[int, str, Def]
"""A loop that feeds a raising method: its line, its text, the method."""


def audit(agent: Agent) -> Iterator[Step]:
    """Steps without end: loops file by file, callers of raising methods, a review, then
    whole-suite runs."""
    grep, hits = agent.grep(r"^\s*for \w+ in [\w.]+:$", limit=150)
    yield Step(
        "Now the audit: the same pattern could hide elsewhere. Every loop over a plain "
        "name or attribute, package-wide:",
        [grep],
    )
    loops: dict[str, list[int]] = {}
    for path, number, _ in hits:
        loops.setdefault(path, []).append(number)
    risky = {p: [r for r in (_risk(agent, p, n) for n in ns) if r] for p, ns in loops.items()}
    order = sorted(loops, key=lambda p: not risky[p])
    named = [f"{shown(p)}:{risky[p][0][0]}" for p in order if risky[p]]
    lead = (
        f"{len(hits)} loops in {len(loops)} files; in {len(named)} of them the loop "
        "variable goes straight to a method that can raise"
        + (f", as at line {agent.sc.loop_line}" if agent.sc else "")
        + f" ({', '.join(named[:4]) or 'none'}). Those first.\n\n"
    )
    for index, path in enumerate(order):
        yield from _file(
            agent, path, loops[path], risky[path], lead=lead * (index == 0), index=index
        )
        if index % 8 == 7:
            recent = order[max(0, index - 2) : index + 1]
            words = " or ".join(f"test_{stem(p)}.py" for p in recent)
            yield Step(
                f"Checkpoint: the tests of the last {len(recent)} modules ({words}).",
                [agent.tests(words)],
            )
    yield from _callers(agent)
    yield from _review(agent, order)
    while True:
        yield Step("Re-running the whole suite once more.", [agent.tests()])


def _risk(agent: Agent, path: str, number: int) -> Risk | None:
    """The loop at ``number`` if it hands its variable to a method (resolved by receiver)
    that has a ``raise``."""
    lines = agent.src.lines(path)
    loop = LOOP.match(lines[number - 1])
    body = lines[number] if number < len(lines) else ""
    if loop is None or f"({loop.group(1)}" not in body:
        return None
    callee = agent.src.resolve(path, body)
    if callee is None or agent.src.raises(callee) is None:
        return None
    return number, lines[number - 1].strip(), callee


def _file(
    agent: Agent, path: str, numbers: list[int], risky: list[Risk], *, lead: str, index: int
) -> Iterator[Step]:
    """One file's loops: read it (whole if new and not huge), and chase a risky one."""
    lines = agent.src.lines(path)
    if len(numbers) == 1:
        where = f"loop at line {numbers[0]}"
    else:
        where = f"loops at lines {', '.join(str(n) for n in numbers[:6])}"
    before = agent.seen.get(path)
    if before is None and len(lines) <= _WHOLE:
        call, how = agent.read(path), f"Reading {shown(path)} whole"
    else:
        start, end = numbers[0] - 8, min(numbers[-1] + 8, numbers[0] + 70)
        call, how = agent.region(path, start, end), f"Viewing {shown(path)} lines {start}-{end}"
        how += f" (read at call {before})" if before else ""
    if risky:
        said = f"`{risky[0][1]}` hands each one to `{risky[0][2].name}`, which can raise"
    else:
        said = _CALM[index % len(_CALM)].format(
            first=lines[numbers[0] - 1].strip(), line=numbers[0]
        )
    agent.audited.extend(path for _ in numbers)
    echo = agent.echo() if index % 4 == 3 else ""
    yield Step(f"{lead}{shown(path)}: {where}; {said}. {how}.{echo}", [call])
    if not risky:
        return
    line, loop, callee = risky[0]
    grep, hits = agent.grep(rf"def {callee.name}\b")
    yield Step(
        f"In {shown(path)}:{line + 1} (`{lines[line].strip()}`) the loop variable goes to "
        f"`{callee.name}` unchecked. Which `{callee.name}` is that, and when does it raise?",
        [grep],
    )
    again = agent.seen.get(callee.path)
    yield Step(
        f"{plural(len(hits), 'definition')} of `{callee.name}`; from the receiver it is "
        f"`{qualname(callee)}` at {shown(callee.path)}:{callee.start}"
        + (f", which I read at call {again}" if again else "")
        + f". It raises at line {agent.src.raises(callee)}; looking at when.",
        [agent.region(callee.path, callee.start, callee.end)],
    )
    agent.flagged.append(f"{shown(path)}:{line} (`{loop}` → `{qualname(callee)}`)")
    yield Step(_verdict(agent, path, line, callee), [agent.tests(f"test_{stem(path)}.py")])


def _verdict(agent: Agent, path: str, line: int, callee: Def) -> str:
    """What the agent makes of a loop that feeds a raising method."""
    sc, lines = agent.sc, agent.src.lines(path)
    home = next((d for d in agent.src.defs(path) if d.start < line <= d.end), None)
    match = LOOP.match(lines[line - 1])
    attr = match.group(2).split(".")[-1] if match else ""
    if sc is None or home is None or (home.path, home.start) != (sc.caller.path, sc.caller.start):
        return (
            f"`{qualname(callee)}` refuses a repeat by design. At {shown(path)}:{line} the "
            "loop iterates what its own caller passed in, so a repeat is that caller's "
            "mistake and fails before anything is changed. Noting it; its module's tests:"
        )
    guard = next((n for n in range(home.start + 1, line) if f".{attr}" in lines[n - 1]), None)
    seen = (
        f"line {guard} (`{lines[guard - 1].strip()}`) already looks at `.{attr}`"
        if guard
        else "nothing checks it first"
    )
    return (
        f"Same shape as line {sc.loop_line}, in the same `{home.name}`: `{callee.name}` "
        f"refuses a repeat too, and {seen}. Not the reported bug, but worth a follow-up "
        "test; noting it. Its module's tests:"
    )


def _callers(agent: Agent) -> Iterator[Step]:
    """Who calls each method that raises: a repeated id must not reach any of them."""
    first = [agent.sc.callee.path, agent.sc.caller.path] if agent.sc else []
    paths = list(dict.fromkeys([*first, *agent.src.files]))
    methods = [
        d
        for p in paths
        for d in agent.src.defs(p)
        if d.owner and not d.name.startswith("__") and agent.src.raises(d)
    ]
    verdict = ""
    for number, found in enumerate(methods):
        text = message(agent.src, found.path, *agent.src.statement(found))
        said = f', with "{text[:90]}"' if text else ""
        grep, hits = agent.grep(rf"\.{found.name}\(")
        yield Step(
            f"{verdict}Next method that raises: `{qualname(found)}` ({shown(found.path)}:"
            f"{found.start}){said}. Who calls `.{found.name}(`?"
            + (agent.echo() if number % 3 == 2 else ""),
            [grep],
        )
        mine = [h for h in hits if agent.src.resolve(h[0], h[2]) == found]
        if not mine:
            verdict = (
                f"{plural(len(hits), 'call site')} of `.{found.name}(`, none of them on "
                f"`{found.owner}` as far as the receivers show. "
            )
            continue
        path, line, code = mine[0]
        before = agent.seen.get(path)
        yield Step(
            f"{plural(len(hits), 'call site')} of `.{found.name}(`, {len(mine)} of them on "
            f"`{found.owner}`; the first is {shown(path)}:{line} `{code.strip()[:80]}`. "
            "Viewing it" + (f" (that file I read at call {before})." if before else "."),
            [agent.region(path, line - 12, line + 12)],
        )
        inside = LOOP.match(agent.src.lines(path)[line - 2]) if line > 1 else None
        if inside:
            verdict = f"{shown(path)}:{line} calls it inside `{inside.group(0).strip()}`. "
        else:
            verdict = f"{shown(path)}:{line} calls it once, not in a loop: fine. "


def _review(agent: Agent, order: list[str]) -> Iterator[Step]:
    """The longer functions of the audited files, one by one, their tests every ten."""
    found = [d for p in order for d in agent.src.defs(p) if d.end - d.start >= 12]
    for number, one in enumerate(found):
        body = agent.src.lines(one.path)[one.start - 1 : one.end]
        raised = agent.src.raises(one)
        loops = [t.strip() for t in body if LOOP.match(t)]
        if raised:
            note = f"it raises at line {raised}"
        elif loops:
            note = f"it loops (`{loops[0]}`) but raises nothing"
        else:
            note = "no loop, no raise"
        before = agent.seen.get(one.path)
        yield Step(
            _REVIEW[number % len(_REVIEW)].format(
                q=qualname(one),
                at=f"{shown(one.path)}:{one.start}-{one.end}",
                note=note,
                when=f"call {before}" if before else "the start",
            ),
            [agent.region(one.path, one.start, one.end)],
        )
        if number % 10 == 9:
            yield Step(
                f"Tests of {shown(one.path)} after these reviews.",
                [agent.tests(f"test_{stem(one.path)}.py")],
            )
