"""Score the interpreter on an evaluation set (``tests/interpret/*.yaml``): per request, whether
the intent, the action and, for changes, the exact plan are right, and whether it edited when
it should not have (a wrong edit: worse than any question)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sorte.interpret.reading import Reading

#: Requests whose right answer is a plan: scored on the exact plan.
PLAN_CATEGORIES = frozenset({"param", "param_relative", "multi_param", "cascade"})


@dataclass
class Result:
    item: dict[str, Any]
    reading: Reading
    seconds: float

    @property
    def expected_ops(self) -> list[dict]:
        return [_op(o) for o in self.item.get("ops") or []]

    @property
    def ops(self) -> list[dict]:
        plan = self.reading.plan
        return [_op(o.model_dump(exclude_none=True)) for o in plan.ops] if plan else []

    @property
    def intent_ok(self) -> bool:
        return self.reading.intent == self.item["intent"]

    @property
    def action_ok(self) -> bool:
        return self.reading.action == self.item["action"]

    @property
    def same_plan(self) -> bool:
        """The same operations; in any order when each changes a different setting (their order
        then changes nothing), in the given order otherwise (stage moves, say)."""
        got, want = self.ops, self.expected_ops
        if got == want:
            return True
        keys = [(o.get("op"), o.get("strategy"), o.get("name"), o.get("stage")) for o in want]
        if len(set(keys)) != len(keys) or any(o.get("op") == "set_stage" for o in want):
            return False
        return sorted(map(repr, got)) == sorted(map(repr, want))

    @property
    def exact(self) -> bool:
        """Intent, action and (for an edit) the operations all as expected."""
        return self.intent_ok and self.action_ok and self.same_plan

    @property
    def wrong_edit(self) -> bool:
        return self.reading.action == "edit" and not (self.item["action"] == "edit" and self.same_plan)

    @property
    def language_ok(self) -> bool:
        return self.reading.language == self.item["lang"]


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    def _share(self, picked: list[Result], ok: Callable[[Result], bool]) -> float:
        return sum(ok(r) for r in picked) / len(picked) if picked else 1.0

    def plans(self) -> list[Result]:
        return [r for r in self.results if r.item["category"] in PLAN_CATEGORIES]

    def rest(self) -> list[Result]:
        return [r for r in self.results if r.item["category"] not in PLAN_CATEGORIES]

    def summary(self) -> dict[str, float]:
        seconds = sorted(r.seconds for r in self.results)
        return {
            "requests": len(self.results),
            "exact_plan": self._share(self.plans(), lambda r: r.exact),
            "intent_rest": self._share(self.rest(), lambda r: r.intent_ok),
            "action_rest": self._share(self.rest(), lambda r: r.action_ok),
            "exact_all": self._share(self.results, lambda r: r.exact),
            "wrong_edit": self._share(self.results, lambda r: r.wrong_edit),
            "language": self._share(self.results, lambda r: r.language_ok),
            "p50_ms": 1000 * seconds[len(seconds) // 2] if seconds else 0.0,
            "p99_ms": 1000 * seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] if seconds else 0.0,
        }

    def by(self, key: Callable[[Result], str]) -> dict[str, dict[str, float]]:
        groups: dict[str, list[Result]] = defaultdict(list)
        for r in self.results:
            groups[key(r)].append(r)
        return {
            name: {
                "n": len(rs),
                "exact": self._share(rs, lambda r: r.exact),
                "intent": self._share(rs, lambda r: r.intent_ok),
                "wrong_edit": self._share(rs, lambda r: r.wrong_edit),
            }
            for name, rs in sorted(groups.items())
        }

    def misses(self) -> list[Result]:
        return [r for r in self.results if not r.exact]


def load_set(path: Path) -> list[dict[str, Any]]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a YAML list of requests")
    return items


def run(items: list[dict[str, Any]], read: Callable[[str], Reading]) -> Report:
    report = Report()
    for item in items:
        t0 = time.perf_counter()
        reading = read(item["text"])
        report.results.append(Result(item, reading, time.perf_counter() - t0))
    return report


async def arun(items: list[dict[str, Any]], read: Callable[[str], Awaitable[Reading]]) -> Report:
    """``run`` for a reader that is a coroutine (tier 2 asks a model)."""
    report = Report()
    for item in items:
        t0 = time.perf_counter()
        reading = await read(item["text"])
        report.results.append(Result(item, reading, time.perf_counter() - t0))
    return report


def _op(op: dict) -> dict:
    return {k: round(v, 9) if isinstance(v, float) and not isinstance(v, bool) else v for k, v in op.items()}
