"""Where the catalogue's names occur in a message: strategies, parameters, stages and
MIN_CONFIDENCE, by their names and aliases, case and accents off, a typo tolerated in longer
words (rapidfuzz's optimal-string-alignment distance: one swap of two letters is one edit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

from rapidfuzz.distance import OSA

from sorte.interpret.catalogue import MIN_CONFIDENCE_ALIASES, Catalogue
from sorte.interpret.text import COMMON_WORDS, words

#: ("strategy", name) | ("param", strategy, name) | ("stage", name) | ("min_confidence",)
Target = tuple[str, ...]


@dataclass
class Mention:
    start: int
    end: int
    targets: set[Target] = field(default_factory=set)
    exact: bool = True

    def kinds(self) -> set[str]:
        return {t[0] for t in self.targets}

    def of(self, kind: str) -> set[Target]:
        return {t for t in self.targets if t[0] == kind}


def phrases(catalogue: Catalogue) -> dict[tuple[str, ...], set[Target]]:
    """Every name and alias as words, with what it names."""
    table: dict[tuple[str, ...], set[Target]] = {}

    def add(text: str, target: Target) -> None:
        key = tuple(words(text.replace("_", " ")))
        if key:
            table.setdefault(key, set()).add(target)
            if len(key) > 1:  # "stoploss", "takeprofit": the words run together
                table.setdefault(("".join(key),), set()).add(target)

    for s in catalogue.strategies.values():
        for text in (s.name, *s.aliases):
            add(text, ("strategy", s.name))
        for p in s.params.values():
            for text in (p.name, *p.aliases):
                add(text, ("param", s.name, p.name))
    for st in catalogue.stages:
        for text in (st.name, *st.aliases):
            add(text, ("stage", st.name))
    for text in ("min_confidence", *MIN_CONFIDENCE_ALIASES):
        add(text, ("min_confidence",))
    return table


def find(
    found: list[str], table: dict[tuple[str, ...], set[Target]], vocabulary: dict[int, tuple[str, ...]]
) -> list[Mention]:
    """Non-overlapping mentions, longest phrase first, exact before fuzzy (``vocabulary``: see
    ``vocabulary()``, built once per table)."""
    longest = max((len(k) for k in table), default=0)
    # each word of the message with the catalogue words it may be (itself first)
    near = [
        [w, *(v for v in vocabulary.get(len(w), ()) if v != w and _close(w, v))] if w not in COMMON_WORDS else [w]
        for w in found
    ]  # a common word is never a typo of a name ("with" is not "width")
    candidates: list[Mention] = []
    for i in range(len(found)):
        for n in range(min(longest, len(found) - i), 0, -1):
            for window in product(*near[i : i + n]):
                targets = table.get(window)
                if targets:
                    exact = window == tuple(found[i : i + n])
                    candidates.append(Mention(i, i + n, set(targets), exact))
    candidates.sort(key=lambda m: (-(m.end - m.start), not m.exact, m.start))
    taken: list[Mention] = []
    for m in candidates:
        if any(m.start < t.end and t.start < m.end for t in taken):
            same = next((t for t in taken if (t.start, t.end) == (m.start, m.end) and t.exact == m.exact), None)
            if same is not None:
                same.targets |= m.targets
            continue
        taken.append(m)
    return sorted(taken, key=lambda m: m.start)


def vocabulary(table: dict[tuple[str, ...], set[Target]]) -> dict[int, tuple[str, ...]]:
    """The catalogue's words by the lengths of message words they may be a typo of."""
    words_ = {w for phrase in table for w in phrase}
    by_length: dict[int, tuple[str, ...]] = {}
    for size in {len(w) + d for w in words_ for d in (-2, -1, 0, 1, 2)}:
        by_length[size] = tuple(sorted(w for w in words_ if abs(len(w) - size) <= 2))
    return by_length


@lru_cache(maxsize=65536)
def _close(word: str, alias: str) -> bool:
    """Same word but for a typo: one edit from five letters on, two from nine; digits exact."""
    if word == alias:
        return True
    if len(alias) < 5 or len(word) < 5 or any(c.isdigit() for c in word + alias):
        return False
    return OSA.distance(word, alias) <= (1 if len(alias) < 9 else 2)
