"""Tier 1's reading of cascade targets: MIN_CONFIDENCE and a stage's threshold, weight,
on/off and position, absolute ("put risk first") or relative ("move risk down two places")."""

from __future__ import annotations

from sorte.editing.plan import SetMinConfidence, SetStage
from sorte.interpret import vocabulary as V
from sorte.interpret.catalogue import StageEntry
from sorte.interpret.mentions import Mention
from sorte.interpret.message import Message, is_word
from sorte.interpret.numbers import Quantity
from sorte.interpret.reading import Change
from sorte.interpret.values import Knob, Unsure, show


class CascadeReading(Message):
    """What a clause sets on the cascade: one operation per stage, all its fields together."""

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
        marks = [(i, "weight" if is_word(w, V.WEIGHT) else "threshold") for i, w in enumerate(self.w[lo:hi], lo)
                 if is_word(w, V.WEIGHT) or is_word(w, V.THRESHOLD)]  # fmt: skip
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

    def _switch_for(self, m: Mention) -> bool | None:
        """On or off for this stage: the nearest on/off word before it, else after it."""
        before = [i for i in range(m.start) if self._on(i) or is_word(self.w[i], V.OFF)]
        after = [i for i in range(m.end, len(self.w)) if self._on(i) or is_word(self.w[i], V.OFF)]
        at = before[-1] if before else (after[0] if after else None)
        if at is None:
            return None
        return self._on(at)

    def _position(self, stage: StageEntry, slots: list, k: int, used: set[int]) -> int | None:
        m: Mention = slots[k][1]
        last = len(self.cat.stages) - 1
        rest = self.w[m.end : slots[k + 1][1].start if k + 1 < len(slots) else len(self.w)]
        for j in range(k + 1, len(slots)):
            between = self.w[slots[j - 1][1].end : slots[j][1].start]
            if slots[j][0] != "stage":
                break
            if any(is_word(w, V.BEFORE) for w in between) or any(is_word(w, V.AFTER) for w in between):
                other = self.cat.stage(slots[j][2][1])
                assert other is not None
                used.add(j)
                after = any(is_word(w, V.AFTER) for w in between)
                target = other.position + (1 if after else 0)
                return target - 1 if stage.position < target else target
        moved = self._moved_by(stage, slots, k)
        if moved is not None:
            return moved
        if any(is_word(w, V.FIRST) for w in rest):
            return 0
        if any(is_word(w, V.LAST) for w in rest):
            return last
        for w in rest:
            if w in V.ORDINALS:
                return V.ORDINALS[w]
        if any(is_word(w, V.POSITION) for w in rest):
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
        if not any(is_word(w, V.POSITION) or w in ("place", "places", "posicoes", "lugares", "lugar") for w in window):
            return None
        step = (
            -1 if any(is_word(w, V.EARLIER) for w in window) else 1 if any(is_word(w, V.LATER) for w in window) else 0
        )
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
