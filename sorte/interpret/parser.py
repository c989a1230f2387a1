"""Tier 1: a request read exactly against the catalogue, with no model.

Portuguese and English, case and accents optional, a typo tolerated in longer names, numbers
as traders write them, absolute and relative changes, several values in one sentence, the
cascade (MIN_CONFIDENCE, a stage's threshold, weight, on/off and position) and the intents
that change nothing. A wrong edit is worse than a question: whatever is not certain becomes
one question or a refusal that says why, and a message it cannot place at all comes back with
confidence 0 for the model tier."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sorte.editing.plan import EditPlan, SetMinConfidence, SetParam, SetStage
from sorte.interpret import replies
from sorte.interpret import vocabulary as V
from sorte.interpret.catalogue import Catalogue, StageEntry
from sorte.interpret.mentions import Mention, Target, find, phrases, vocabulary
from sorte.interpret.models import Change, Reading
from sorte.interpret.numbers import MULTIPLIERS, Quantity, quantities
from sorte.interpret.text import Language, language, normalise, words
from sorte.interpret.values import Knob, Unsure, absolute, checked, relative, show

_JOINERS = frozenset({"e", "and", "&", "tambem", "tb", "tbm", "also", "plus", "depois", "then", "mas", "but"})
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")
#: A number's unit and the words of the one parameter doc it may name ("at least 25s").
_UNIT_DOCS = {"seconds": "second", "minutes": "second", "deviations": "standard deviation"}
#: Below this a tier-1 reading hands over to the model tier.
CONFIDENT = 0.8


class Interpreter:
    """Reads messages against one catalogue (build one per catalogue; reading is pure)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.table = phrases(catalogue)
        self.vocabulary = vocabulary(self.table)

    def read(self, text: str) -> Reading:
        return _Read(self, text).reading()


class _Read:
    def __init__(self, interpreter: Interpreter, text: str) -> None:
        self.cat = interpreter.catalogue
        self.w = words(text)
        self.lang: Language = language(text)
        self.qty = quantities(self.w)
        units = {i for q in self.qty for i in range(q.start, q.end)}
        found = find(self.w, interpreter.table, interpreter.vocabulary)
        self.mentions = [m for m in found if not units & set(range(m.start, m.end))]
        self.everywhere = self.mentions  # the whole message's mentions (self.mentions narrows to a clause)
        self.run_id = (RUN_ID.findall(normalise(text)) or [None])[0]
        self.strategy: str | None = None  # the strategy a change is about, once read
        self.previous: Mention | None = None
        self.clause_lo = 0

    # -- the order of questions -----------------------------------------------------------------
    def reading(self) -> Reading:
        hostile = self._has(V.HOSTILE)
        rejects, approves = self._has(V.INTENTS["reject"]), self._has(V.INTENTS["approve"])
        if (rejects or approves) and self._sets_a_value():  # "aprova o stop em 3%": which change?
            return self._hostile() if hostile else self._make("unclear", "ask", key="approve_or_change")
        if rejects or (approves and self._negated()):
            return self._hostile() if hostile else self._answer("reject", run_id=self.run_id)
        if approves:
            return self._hostile() if hostile else self._answer("approve", run_id=self.run_id)
        if self._has(V.INTENTS["rollback"]) and not self._sets_a_value():
            return self._hostile() if hostile else self._answer("rollback")
        if self._has(V.CODE) and not hostile:
            return self._code()
        edit = self._edit()
        if edit is not None:
            if hostile and edit.action != "refuse":
                return self._hostile()
            return edit
        if hostile:
            return self._hostile()
        if self._has_words(V.FOREIGN):
            return self._code()
        if self._has(V.INTENTS["optimise"]):
            return self._non_edit("optimise")
        if self._has(V.VAGUE):
            return self._make("unclear", "ask", key="what_to_change", confidence=0.9)
        if self._has(V.VAGUE_CHANGE):
            return self._make("change", "ask", strategy=self._one_strategy(), key="what_to_change", confidence=0.9)
        named = bool(self.mentions)
        for intent in ("lessons", "explain", "pnl", "status", "help"):
            if self._has(V.INTENTS[intent]) or (intent == "explain" and named and self._has(V.EXPLAIN_WEAK)):
                return self._non_edit(intent)
        if self._has_words(V.THRESHOLD + V.WEIGHT) and self.qty:
            options = ", ".join(s.name for s in self.cat.stages)
            return self._make("change", "ask", key="which_stage", options=options, confidence=0.9)
        if named and any(_is(w, V.UP + V.DOWN + V.SET + V.ON + V.OFF) for w in self.w):
            return self._make("change", "ask", strategy=self._one_strategy(), key="what_to_change", confidence=0.6)
        if named:
            return self._make("unclear", "ask", strategy=self._one_strategy(), key="what_value", confidence=0.5)
        return self._make("unclear", "ask", key="unclear", confidence=0.0)

    def _sets_a_value(self) -> bool:
        """ "revert momentum's stop loss to 2%" sets a value; a rollback of the deployment names none."""
        named = any(m.of("param") or m.of("stage") or m.of("min_confidence") for m in self.mentions)
        return named and bool(self.qty)

    def _code(self) -> Reading:
        return self._make("change", "code", strategy=self._one_strategy(), key="code")

    def _non_edit(self, intent: str) -> Reading:
        strategy = self._one_strategy()
        if intent == "optimise" and strategy is None:
            if len(self.cat.strategies) != 1:
                return self._make("optimise", "ask", key="which_strategy", options=self._strategy_list())
            strategy = next(iter(self.cat.strategies))
        return self._make(intent, "answer", strategy=strategy)  # type: ignore[arg-type]

    def _hostile(self) -> Reading:
        return self._make("unclear", "refuse", key="hostile")

    def _answer(self, intent: str, run_id: str | None = None) -> Reading:
        return self._make(intent, "answer", run_id=run_id)  # type: ignore[arg-type]

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
        if any(_is(w, V.FIRST + V.LAST + V.BEFORE + V.AFTER + V.EARLIER + V.LATER) or w in V.ORDINALS for w in window):
            return any(kind == "stage" for kind, _, _ in slots)
        if any(w in MULTIPLIERS for w in window):
            return True
        return any(kind == "stage" for kind, _, _ in slots) and any(
            self._on(i) or _is(w, V.OFF) for i, w in enumerate(self.w)
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
            any(self._on(i) or _is(w, V.OFF) for i, w in enumerate(self.w))
            or self._has_words(V.STAGE_WORDS + V.THRESHOLD + V.WEIGHT + V.BEFORE + V.AFTER)
            or self._has_words(V.FIRST + V.LAST)
            or any(w in V.ORDINALS for w in self.w)
        )

    def _unknown_parameter(self) -> Reading | None:
        """A change asked of a strategy with a value, but no parameter of it named."""
        strategy = self._one_strategy()
        verb = any(_is(w, V.UP + V.DOWN + V.SET) for w in self.w)
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

    # -- MIN_CONFIDENCE ------------------------------------------------------------------------
    def _min_confidence(self, slots: list, k: int) -> tuple[SetMinConfidence, Change]:
        knob = Knob("cascade.MIN_CONFIDENCE", self.cat.min_confidence, "float", 0.0, 1.0, True)
        value = float(self._value(slots, k, knob))
        return SetMinConfidence(value=value), Change(target=knob.target, before=knob.current, after=value)

    # -- stages --------------------------------------------------------------------------------
    def _stage(self, slots: list, k: int) -> tuple[SetStage, list[Change], set[int]]:
        """One stage's new settings, all in one operation: position, on/off, threshold, weight."""
        m: Mention = slots[k][1]
        stage = self.cat.stage(slots[k][2][1])
        assert stage is not None
        lo = slots[k - 1][1].end if k > 0 else self.clause_lo
        hi = slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)
        used: set[int] = set()
        fields: dict[str, object] = {}
        changes: list[Change] = []
        position = self._position(stage, slots, k, used)
        if position is not None:
            fields["position"] = position
            changes.append(Change(target=f"cascade.{stage.name}.position", before=stage.position, after=position))
        else:
            for field_, q, at in self._stage_values(slots, k, lo, hi):
                if field_ == "weight":
                    knob = Knob(f"cascade.{stage.name}.weight", stage.weight, "float", 0.0, 100.0, False)
                else:
                    knob = Knob(f"cascade.{stage.name}.threshold", stage.threshold, "float", 0.0, 1.0, True)
                value = float(self._compute(knob, q, at, hi))
                if field_ == "weight" and value <= 0:
                    raise Unsure("refuse", "out_of_bounds", target=knob.target, value=show(value), bounds="(0, 100]")
                fields[field_] = value
                changes.append(Change(target=knob.target, before=knob.current, after=value))
        switch = self._switch_for(m)
        if switch is not None and (switch != stage.enabled or not fields):  # "liga o risco e bota em primeiro"
            fields["enabled"] = switch
            changes.append(Change(target=f"cascade.{stage.name}.enabled", before=stage.enabled, after=switch))
        if not fields:
            raise Unsure("ask", "what_value_for", target=f"cascade.{stage.name}", current=show(stage.threshold))
        return SetStage.model_validate({"stage": stage.name, **fields}), changes, used

    def _stage_values(self, slots: list, k: int, lo: int, hi: int) -> list[tuple[str, Quantity | None, int]]:
        """(field, number, where its words start) for each threshold or weight the message gives
        the stage: "threshold 0.8, weight 0.5"; a bare number is a threshold."""
        marks = [(i, "weight" if _is(w, V.WEIGHT) else "threshold") for i, w in enumerate(self.w[lo:hi], lo)
                 if _is(w, V.WEIGHT) or _is(w, V.THRESHOLD)]  # fmt: skip
        if not marks:
            q = self._qty_for(slots, k)
            return [("threshold", q, lo)] if q is not None else []
        out = []
        for n, (i, field_) in enumerate(marks):
            nxt = marks[n + 1][0] if n + 1 < len(marks) else hi
            start = marks[n - 1][0] + 1 if n else lo
            after = [q for q in self.qty if i < q.start < nxt]
            before = [q for q in self.qty if start <= q.start < i]
            q = after[0] if after else (before[-1] if before and n == 0 else None)
            out.append((field_, q, start))
        return out

    def _stage_op(self, stage: StageEntry, field_: str, value: object) -> SetStage:
        return SetStage.model_validate({"stage": stage.name, field_: value})

    def _stage_field(self, lo: int, hi: int) -> str | None:
        window = self.w[lo:hi]
        if any(_is(w, V.WEIGHT) for w in window):
            return "weight"
        if any(_is(w, V.THRESHOLD) for w in window):
            return "threshold"
        return None

    def _switch_for(self, m: Mention) -> bool | None:
        """On or off for this stage: the nearest on/off word before it, else after it."""
        before = [i for i in range(m.start) if self._on(i) or _is(self.w[i], V.OFF)]
        after = [i for i in range(m.end, len(self.w)) if self._on(i) or _is(self.w[i], V.OFF)]
        at = before[-1] if before else (after[0] if after else None)
        if at is None:
            return None
        return self._on(at)

    def _on(self, i: int) -> bool:
        word = self.w[i]
        if _is(word, V.ON):
            return not (i > 0 and self.w[i - 1] in ("nao", "don't", "dont", "not"))
        # "turn on", "switch it on", "bring back on": bare "on" is also a preposition
        return word in ("on", "back") and any(w in ("turn", "switch", "put", "bring", "vira") for w in self.w[:i])

    def _position(self, stage: StageEntry, slots: list, k: int, used: set[int]) -> int | None:
        m: Mention = slots[k][1]
        last = len(self.cat.stages) - 1
        rest = self.w[m.end : slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)]
        for j in range(k + 1, len(slots)):
            between = self.w[slots[j - 1][1].end : slots[j][1].start]
            if slots[j][0] != "stage":
                break
            if any(_is(w, V.BEFORE) for w in between) or any(_is(w, V.AFTER) for w in between):
                other = self.cat.stage(slots[j][2][1])
                assert other is not None
                used.add(j)
                after = any(_is(w, V.AFTER) for w in between)
                target = other.position + (1 if after else 0)
                return target - 1 if stage.position < target else target
        moved = self._moved_by(stage, slots, k)
        if moved is not None:
            return moved
        if any(_is(w, V.FIRST) for w in rest):
            return 0
        if any(_is(w, V.LAST) for w in rest):
            return last
        for w in rest:
            if w in V.ORDINALS:
                return V.ORDINALS[w]
        if any(_is(w, V.POSITION) for w in rest):
            q = self._qty_for(slots, k)
            if q is None or not q.whole or not 0 <= q.value <= last:
                raise Unsure("refuse", "bad_position", last=last)
            return int(q.value)
        return None

    def _moved_by(self, stage: StageEntry, slots: list, k: int) -> int | None:
        """ "adianta a validação uma posição", "move risk down two places": relative to where it is."""
        lo = slots[k - 1][1].end if k > 0 else self.clause_lo
        hi = slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)
        window = self.w[lo:hi]
        if not any(_is(w, V.POSITION) or w in ("place", "places", "posicoes", "lugares", "lugar") for w in window):
            return None
        step = -1 if any(_is(w, V.EARLIER) for w in window) else 1 if any(_is(w, V.LATER) for w in window) else 0
        if step == 0:
            return None
        q = next((q for q in self.qty if lo <= q.start < hi), None)
        n = int(q.value) if q is not None and q.whole else 1
        last = len(self.cat.stages) - 1
        target = stage.position + step * n
        if not 0 <= target <= last:
            raise Unsure("refuse", "bad_position", last=last)
        return target

    def _cascade_still_trades(self, ops: list) -> None:
        """Refused before any run: a cascade whose every strategy stage is off proposes nothing."""
        enabled = {s.name: s.enabled for s in self.cat.stages}
        for op in ops:
            if isinstance(op, SetStage) and op.enabled is not None:
                enabled[op.stage] = op.enabled
        strategies_on = [s for s in self.cat.stages if s.kind == "strategy" and enabled[s.name]]
        if self.cat.stages and not strategies_on:
            raise Unsure("refuse", "no_strategy_stage")

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
        direction = _direction(before) or _direction(after)  # "ten points lower"
        added = any(_is(w, V.ADD) for w in before) - any(_is(w, V.SUBTRACT) for w in before)
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
        return any(_phrase_at(self.w, i, p) for p in table for i in range(len(self.w)))

    def _has_words(self, entries: tuple[str, ...]) -> bool:
        return any(_is(w, entries) for w in self.w)

    def _multiplier_anywhere(self) -> bool:
        return any(w in MULTIPLIERS for w in self.w)

    def _negated(self) -> bool:
        return self._has(
            (("nao", "aprov"), ("not", "approv"), ("don't", "approv"), ("dont", "approv"), ("nunca", "aprov"))
        )

    def _make(self, intent: str, action: str, *, key: str = "", confidence: float = 1.0, **values: object) -> Reading:
        strategy = values.pop("strategy", None)
        run_id = values.pop("run_id", None)
        message = replies.text(key, self.lang, **values) if key else ""
        return Reading(
            intent=intent,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
            language=self.lang,
            strategy=strategy,  # type: ignore[arg-type]
            run_id=run_id,  # type: ignore[arg-type]
            message=message,
            confidence=confidence,
        )


def _is(word: str, entries: tuple[str, ...]) -> bool:
    return any(word.startswith(e[:-1]) if e.endswith("*") else word == e for e in entries)


def _phrase_at(found: list[str], i: int, phrase: tuple[str, ...]) -> bool:
    """A phrase's words from word i on (an entry ending in * is a prefix; "*" is any word)."""
    if i + len(phrase) > len(found):
        return False
    return all(_is(found[i + j], (p,)) for j, p in enumerate(phrase))


def _direction(clause: list[str]) -> int:
    up = any(_is(w, V.UP) for w in clause)
    down = any(_is(w, V.DOWN) for w in clause)
    return 0 if up == down else (1 if up else -1)
