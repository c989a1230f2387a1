"""Tier 1's reading of a change: the message cut into clauses, each clause's slots (a
parameter, MIN_CONFIDENCE, a stage) with their numbers, and the parameter each slot means."""

from __future__ import annotations

from typing import Any

from sorte.editing.plan import EditPlan, SetParam
from sorte.interpret import replies
from sorte.interpret import vocabulary as V
from sorte.interpret.cascade_targets import CascadeReading
from sorte.interpret.mentions import Mention, Target
from sorte.interpret.message import is_word
from sorte.interpret.numbers import MULTIPLIERS, Quantity
from sorte.interpret.reading import Change, Reading
from sorte.interpret.text import words
from sorte.interpret.values import Knob, Unsure, show

_JOINERS = frozenset({"e", "and", "&", "tambem", "tb", "tbm", "also", "plus", "depois", "then", "mas", "but"})

#: A number's unit and the words of the one parameter doc it may name ("at least 25s").
_UNIT_DOCS = {"seconds": "second", "minutes": "second", "deviations": "standard deviation"}


class ChangeReading(CascadeReading):
    """The message as a change: an edit plan, the value already there, a question or a refusal."""

    # -- changes --------------------------------------------------------------------------------
    def _edit(self) -> Reading | None:
        """The message as a change, or None when it names nothing to change with a value."""
        everything, numbers = self.mentions, self.qty
        ops: list[Any] = []  # SetParam | SetStage | SetMinConfidence, in the message's order
        changes: list[Change] = []
        same: list[Change] = []
        self.strategy = None
        self.previous = None  # the last parameter named: "… e o do breakout em 4%"
        found_any = False
        try:
            for lo, hi in self._clauses():
                self.clause_lo = lo
                self.mentions = [m for m in everything if lo <= m.start < hi]
                self.qty = [q for q in numbers if lo <= q.start < hi]
                slots = self._slots()
                if not slots and self.previous is not None and self.qty and lo > 0:
                    slots = [
                        ("param", Mention(self.qty[0].start, self.qty[0].start, set(self.previous.targets)), ("param",))
                    ]
                if not slots:
                    slots = self._by_unit()
                if not slots or not self._actionable(slots):
                    continue
                found_any = True
                self._clause(slots, ops, changes, same)
                used = {id(self._qty_for(slots, k)) for k in range(len(slots))}
                extra = self._by_unit([q for q in self.qty if id(q) not in used])
                if extra and all(extra[0][1].targets != s[1].targets for s in slots):
                    self._clause(extra, ops, changes, same)  # "… and make the bands 2.5 sigma wide"
            self.mentions, self.qty = everything, numbers
            if not found_any:
                return self._unknown_parameter()
            self._cascade_still_trades(ops)
        except Unsure as why:
            self.mentions, self.qty = everything, numbers
            strategy = self.strategy or self._one_strategy()
            return self._make("change", why.action, strategy=strategy, key=why.key, **why.values)  # type: ignore[arg-type]
        if not ops:
            reading = "; ".join(f"{c.target} = {show(c.after)}" for c in same)
            return self._make("change", "answer", strategy=self.strategy, key="already", reading=reading)
        summary = "; ".join(c.text() for c in changes)
        confidence = 0.95 if all(m.exact for m in self.mentions) else 0.85
        return Reading(
            intent="change",
            action="edit",
            language=self.lang,
            strategy=self.strategy,
            plan=EditPlan(summary=summary, ops=ops),
            changes=changes,
            message=replies.text("restated", self.lang, reading=summary),
            confidence=confidence,
        )

    def _clauses(self) -> list[tuple[int, int]]:
        """Word ranges that each set their own values: split at "e", "and", commas and the like
        when both sides hold a number ("a rápida pra 8 e a lenta pra 30")."""
        cuts = [i for i, w in enumerate(self.w) if w in _JOINERS]
        bounds = [0]
        for c in cuts:
            nxt = next((d for d in cuts if d > c), len(self.w))
            left = any(bounds[-1] <= q.start < c for q in self.qty)
            right = any(c < q.start < nxt for q in self.qty)
            named = any(c < m.start < nxt for m in self.mentions)  # "… and weight 1.2" stays one clause
            if left and right and named:
                bounds.append(c + 1)
        bounds.append(len(self.w))
        return list(zip(bounds, bounds[1:], strict=False))

    def _actionable(self, slots: list) -> bool:
        if any(self._qty_for(slots, k) for k in range(len(slots))):
            return True
        lo, hi = slots[0][1].start, slots[-1][1].end
        window = self.w[max(0, lo - 6) : hi + 6]
        if any(
            is_word(w, V.FIRST + V.LAST + V.BEFORE + V.AFTER + V.EARLIER + V.LATER) or w in V.ORDINALS for w in window
        ):
            return any(kind == "stage" for kind, _, _ in slots)
        if any(w in MULTIPLIERS for w in window):
            return True
        return any(kind == "stage" for kind, _, _ in slots) and any(
            self._on(i) or is_word(w, V.OFF) for i, w in enumerate(self.w)
        )

    def _clause(self, slots: list, ops: list, changes: list, same: list) -> None:
        done: set[int] = set()
        for k, slot in enumerate(slots):
            if k in done:
                continue
            kind = slot[0]
            results: list[tuple[Any, Change]]
            if kind == "param":
                results = list(self._params(slots, k))
            elif kind == "min_confidence":
                results = [self._min_confidence(slots, k)]
            else:
                op, stage_changes, used = self._stage(slots, k)
                done |= used
                moved = [c for c in stage_changes if c.before != c.after]
                same.extend(c for c in stage_changes if c.before == c.after)
                if moved:
                    ops.append(op)
                    changes.extend(moved)
                continue
            for op, change in results:
                if change.before == change.after:
                    same.append(change)
                else:
                    ops.append(op)
                    changes.append(change)

    def _slots(self) -> list[tuple[str, Mention, Target]]:
        """What the message sets, in order: parameters, MIN_CONFIDENCE, stages."""
        params = [m for m in self.mentions if m.of("param")]
        out: list[tuple[str, Mention, Target]] = []
        for m in self.mentions:
            if m.of("param") and self._generic_next_to_param(m):
                continue  # "o período da média lenta": the slow SMA's window, not breakout's period
            if m.of("param") and out and out[-1][0] == "param" and out[-1][1].of("param") == m.of("param"):
                continue  # "escala de força (strength_scale)", "width 3 sigma": named twice
            if m.of("min_confidence"):
                out.append(("min_confidence", m, ("min_confidence",)))
            elif m.of("param") and not (m.of("stage") and self._stage_context(m)):
                out.append(("param", m, ("param",)))
            elif m.of("stage") and (not m.of("strategy") or (not params and self._stage_context(m))):
                out.append(("stage", m, next(iter(m.of("stage")))))
        return out

    def _generic_next_to_param(self, m: Mention) -> bool:
        """A bare "period"/"janela" right before or after another parameter's name qualifies it."""
        if not all(w in V.GENERIC for w in self.w[m.start : m.end]):
            return False
        for other in self.mentions:
            if other is m or not other.of("param") or all(w in V.GENERIC for w in self.w[other.start : other.end]):
                continue
            lo, hi = (m.end, other.start) if other.start >= m.end else (other.end, m.start)
            if lo <= hi and all(w in V.CONNECTORS for w in self.w[lo:hi]):
                return True
        return False

    def _stage_context(self, m: Mention) -> bool:
        """A name that is a stage and a strategy ("momentum") is the stage when the message talks
        of stages: on/off, thresholds, weights, order, or the word stage itself."""
        if any(q.unit in ("seconds", "minutes", "bars", "deviations") for q in self.qty):
            return False  # "40 segundos": a strategy's parameter
        return (
            any(self._on(i) or is_word(w, V.OFF) for i, w in enumerate(self.w))
            or self._has_words(V.STAGE_WORDS + V.THRESHOLD + V.WEIGHT + V.BEFORE + V.AFTER)
            or self._has_words(V.FIRST + V.LAST)
            or any(w in V.ORDINALS for w in self.w)
        )

    def _unknown_parameter(self) -> Reading | None:
        """A change asked of a strategy with a value, but no parameter of it named."""
        strategy = self._one_strategy()
        verb = any(is_word(w, V.UP + V.DOWN + V.SET) for w in self.w)
        if strategy is None or not self.qty or not verb:
            return None
        known = ", ".join(self.cat.strategies[strategy].params)
        # no parameter named at all: a refusal, but the model tier may still place it
        return self._make(
            "change",
            "refuse",
            strategy=strategy,
            key="unknown_param",
            strategy_name=strategy,
            known=known,
            confidence=0.7,
        )

    # -- one parameter --------------------------------------------------------------------------
    def _params(self, slots: list, k: int) -> list[tuple[SetParam, Change]]:
        m: Mention = slots[k][1]
        self._foreign_before(m)
        if m.end > m.start:
            self.previous = m
        named = self._named_strategies(m)
        if named:  # "o stop do momentum e do breakout pra 3%": each one named
            return [self._param(slots, k, strategy) for strategy in named]
        if self.strategy is not None:  # "momentum: stop 1,5% e take 5%"
            return [self._param(slots, k, self.strategy)]
        elsewhere = list(dict.fromkeys(t[1] for x in self.everywhere if x is not m for t in sorted(x.of("strategy"))))
        if len(elsewhere) == 1:  # "sl 2% e tp 4% na reversão": named once for the whole message
            return [self._param(slots, k, elsewhere[0])]
        owners = [name for name in self.cat.strategies if any(t[1] == name for t in m.of("param"))]
        if self._has(V.ALL_STRATEGIES) and owners:  # "stop loss to 1.5% on all three strategies"
            return [self._param(slots, k, strategy) for strategy in owners]
        if all(w in V.GENERIC for w in self.w[m.start : m.end]):  # "muda o período pra 25": which one?
            raise Unsure("ask", "which_param", name=" ".join(self.w[m.start : m.end]), options=self._generic_options(m))
        if len(owners) == 1:
            return [self._param(slots, k, owners[0])]
        refusals: list[Unsure] = []
        for strategy in owners:
            try:
                self._param(slots, k, strategy)
            except Unsure as why:
                refusals.append(why)
        self.strategy = None
        if refusals and len(refusals) == len(owners) and all(r.action == "refuse" for r in refusals):
            raise refusals[0]  # out of bounds wherever it is declared: no need to ask which
        said = " ".join(self.w[m.start : m.end]) or "?"
        raise Unsure("ask", "which_strategy_for", name=said, options=", ".join(owners))

    def _param(self, slots: list, k: int, strategy: str) -> tuple[SetParam, Change]:
        m: Mention = slots[k][1]
        entry = self.cat.strategies[strategy]
        names = [t[2] for t in m.of("param") if t[1] == strategy]
        if not names:
            said = " ".join(self.w[m.start : m.end])
            known = ", ".join(entry.params)
            raise Unsure("refuse", "unknown_param_named", name=said, strategy_name=strategy, known=known)
        spec = entry.params[names[0]]
        knob = Knob(
            f"{strategy}.{spec.name}",
            spec.value,
            spec.type,
            spec.min,
            spec.max,
            spec.fraction or (spec.type == "float" and spec.max is not None and spec.max <= 1),
            spec.name.endswith("_s") or "seconds" in spec.doc.lower(),
        )
        value = self._value(slots, k, knob)
        self.strategy = self.strategy or strategy
        return SetParam(strategy=strategy, name=spec.name, value=value), Change(
            target=knob.target, before=spec.value, after=value
        )

    def _named_strategies(self, m: Mention) -> list[str]:
        """Strategies named in this clause, in order (the parameter's own mention aside)."""
        named = [t[1] for x in self.mentions if x is not m for t in sorted(x.of("strategy"))]
        return list(dict.fromkeys(named))

    def _by_unit(self, numbers: list[Quantity] | None = None) -> list[tuple[str, Mention, Target]]:
        """A number whose unit names the parameter: "at least 25s" is a minimum hold, "3 sigma" a
        band width; only for a strategy named in the message and one parameter of that kind."""
        strategy = self.strategy or self._one_strategy()
        if strategy is None or strategy not in self.cat.strategies:
            return []
        for q in self.qty if numbers is None else numbers:
            if q.unit not in _UNIT_DOCS:
                continue
            fits = [p for p in self.cat.strategies[strategy].params.values() if _UNIT_DOCS[q.unit] in p.doc.lower()]
            if len(fits) == 1:
                return [("param", Mention(q.start, q.start, {("param", strategy, fits[0].name)}), ("param",))]
        return []

    def _generic_options(self, m: Mention) -> str:
        said = set(self.w[m.start : m.end])
        options = [
            f"{s.name}.{p.name}"
            for s in self.cat.strategies.values()
            for p in s.params.values()
            if said & set(words(" ".join([p.name.replace("_", " "), *p.aliases])))
        ]
        return ", ".join(options)

    def _foreign_before(self, m: Mention) -> None:
        """ "trailing stop", "macd period", "limite de perda diária": a parameter no strategy has,
        named in the refusal."""
        near = self.w[max(0, m.start - 2) : m.start] + self.w[m.end : m.end + 2]
        for w in near:
            if w in V.FOREIGN or w in V.QUALIFIERS:
                said = " ".join(self.w[max(0, m.start - 2) : min(len(self.w), m.end + 2)])
                strategy = self._one_strategy()
                known = ", ".join(self.cat.strategies[strategy].params) if strategy else self._strategy_list()
                key = "unknown_param_named" if strategy else "unknown_param_any"
                raise Unsure("refuse", key, name=said, strategy_name=strategy or "", known=known)
