"""One message as tier 1 reads it: its words, numbers and mentions of the catalogue, and what
every part of the reader asks of them (a value for a knob, the one strategy named, a reply)."""

from __future__ import annotations

import re
from dataclasses import replace

from sorte.interpret import replies
from sorte.interpret import vocabulary as V
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.mentions import Mention, Target, find
from sorte.interpret.numbers import MULTIPLIERS, Quantity, quantities
from sorte.interpret.reading import Reading
from sorte.interpret.replies import Language, language
from sorte.interpret.text import normalise, words
from sorte.interpret.values import Knob, Unsure, absolute, checked, relative, show

RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")


class Message:
    """The state of one reading; the clause and cascade readers build on it."""

    def __init__(
        self,
        catalogue: Catalogue,
        table: dict[tuple[str, ...], set[Target]],
        vocab: dict[int, tuple[str, ...]],
        text: str,
    ) -> None:
        self.cat = catalogue
        self.w = words(text)
        self.lang: Language = language(text)
        self.qty = quantities(self.w)
        units = {i for q in self.qty for i in range(q.start, q.end)}
        found = find(self.w, table, vocab)
        self.mentions = [m for m in found if not units & set(range(m.start, m.end))]
        self.everywhere = self.mentions  # the whole message's mentions (self.mentions narrows to a clause)
        self.run_id = (RUN_ID.findall(normalise(text)) or [None])[0]
        self.strategy: str | None = None  # the strategy a change is about, once read
        self.previous: Mention | None = None
        self.clause_lo = 0

    def _on(self, i: int) -> bool:
        word = self.w[i]
        if is_word(word, V.ON):
            return not (i > 0 and self.w[i - 1] in ("nao", "don't", "dont", "not"))
        # "turn on", "switch it on", "bring back on": bare "on" is also a preposition
        return word in ("on", "back") and any(w in ("turn", "switch", "put", "bring", "vira") for w in self.w[:i])

    # -- values --------------------------------------------------------------------------------
    def _qty_for(self, slots: list, k: int) -> Quantity | None:
        """The number that belongs to slot k: after it (up to the next slot), preferring one said
        with "to"/"para"; else the one just before it ("3% de stop")."""
        m: Mention = slots[k][1]
        nxt = slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)
        after = [q for q in self.qty if m.end <= q.start < nxt]
        if after:
            to = [q for q in after if q.start > 0 and self.w[q.start - 1] in V.TO]
            return to[-1] if to else after[0]
        prev = slots[k - 1][1].end if k > 0 else 0
        if k > 0 and self._qty_for(slots, k - 1) is not None:
            claimed = self._qty_for(slots, k - 1)
            before = [q for q in self.qty if prev <= q.start < m.start and q is not claimed]
        else:
            before = [q for q in self.qty if prev <= q.start < m.start]
        return before[-1] if before else None

    def _value(self, slots: list, k: int, knob: Knob) -> bool | int | float:
        lo = slots[k - 1][1].end if k > 0 else self.clause_lo
        hi = slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)
        return self._compute(knob, self._qty_for(slots, k), lo, hi)

    def _compute(self, knob: Knob, q: Quantity | None, lo: int, hi: int) -> bool | int | float:
        """The knob's new value from its number, the words around it (lo..hi) and their direction."""
        named = {i for m in self.everywhere for i in range(m.start, m.end)}  # "volume boost" is no "boost!"
        before = [w for i, w in enumerate(self.w[lo : q.start] if q else self.w[lo:hi], lo) if i not in named]
        after = [w for i, w in enumerate(self.w[q.end : hi], q.end) if i not in named] if q else []
        direction = direction_of(before) or direction_of(after)  # "ten points lower"
        added = any(is_word(w, V.ADD) for w in before) - any(is_word(w, V.SUBTRACT) for w in before)
        factor = next((MULTIPLIERS[w] for w in self.w[lo:hi] if w in MULTIPLIERS), None)
        if q is None:
            if factor is None:
                raise Unsure("ask", "what_value_for", target=knob.target, current=show(knob.current))
            return checked(knob, knob.current * factor, direction=0)
        prep = self.w[q.start - 1] if q.start > 0 else ""
        if q.unit == "minutes":
            if not knob.seconds:
                raise Unsure("ask", "unit_of", target=knob.target, current=show(knob.current))
            q = replace(q, value=q.value * 60, unit="seconds")
        if q.unit == "times":
            return checked(knob, knob.current * q.value, direction=0)
        if added:  # "add 4 bars", "mais 15 segundos", "tira 3 pontos": always by that much
            return relative(knob, q, added)
        points = q.unit in ("points", "pp") and prep not in V.TO
        by_amount = q.sign != 0 or (prep in V.BY and direction != 0) or points
        if by_amount:
            return relative(knob, q, q.sign or direction)
        return absolute(knob, q, direction, prep)

    # -- helpers -------------------------------------------------------------------------------
    def _one_strategy(self) -> str | None:
        named = {t[1] for m in self.mentions for t in m.of("strategy")}
        if len(named) == 1:
            return named.pop()
        owners = {t[1] for m in self.mentions for t in m.of("param")}
        return owners.pop() if len(owners) == 1 and not named else None

    def _strategy_list(self) -> str:
        return ", ".join(self.cat.strategies)

    def _has(self, table: tuple[tuple[str, ...], ...]) -> bool:
        return any(phrase_at(self.w, i, p) for p in table for i in range(len(self.w)))

    def _has_words(self, entries: tuple[str, ...]) -> bool:
        return any(is_word(w, entries) for w in self.w)

    def _make(self, intent: str, action: str, *, key: str = "", confidence: float = 1.0, **values: object) -> Reading:
        strategy = values.pop("strategy", None)
        run_id = values.pop("run_id", None)
        message = replies.text(key, self.lang, **values) if key else ""
        return Reading(
            intent=intent,
            action=action,
            language=self.lang,
            strategy=strategy,
            run_id=run_id,
            message=message,
            confidence=confidence,
        )


def is_word(word: str, entries: tuple[str, ...]) -> bool:
    return any(word.startswith(e[:-1]) if e.endswith("*") else word == e for e in entries)


def phrase_at(found: list[str], i: int, phrase: tuple[str, ...]) -> bool:
    """A phrase's words from word i on (an entry ending in * is a prefix; "*" is any word)."""
    if i + len(phrase) > len(found):
        return False
    return all(is_word(found[i + j], (p,)) for j, p in enumerate(phrase))


def direction_of(clause: list[str]) -> int:
    up = any(is_word(w, V.UP) for w in clause)
    down = any(is_word(w, V.DOWN) for w in clause)
    return 0 if up == down else (1 if up else -1)
