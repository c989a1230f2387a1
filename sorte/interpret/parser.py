"""Tier 1: a request read exactly against the catalogue, with no model.

Portuguese and English, case and accents optional, a typo tolerated in longer names, numbers
as traders write them, absolute and relative changes, several values in one sentence, the
cascade (MIN_CONFIDENCE, a stage's threshold, weight, on/off and position) and the intents
that change nothing. A wrong edit is worse than a question: whatever is not certain becomes
one question or a refusal that says why, and a message it cannot place at all comes back with
confidence 0 for the model tier."""

from __future__ import annotations

from sorte.interpret import vocabulary as V
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.clauses import ChangeReading
from sorte.interpret.mentions import phrases, vocabulary
from sorte.interpret.message import is_word
from sorte.interpret.reading import Reading

#: Below this a tier-1 reading hands over to the model tier.
CONFIDENT = 0.8


class Interpreter:
    """Reads messages against one catalogue (build one per catalogue; reading is pure)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.table = phrases(catalogue)
        self.vocabulary = vocabulary(self.table)

    def read(self, text: str) -> Reading:
        return _Read(self.catalogue, self.table, self.vocabulary, text).reading()


class _Read(ChangeReading):
    """The order of questions: a decision, a rollback, code, a change, then what changes nothing."""

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
        if named and any(is_word(w, V.UP + V.DOWN + V.SET + V.ON + V.OFF) for w in self.w):
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
        return self._make(intent, "answer", strategy=strategy)

    def _hostile(self) -> Reading:
        return self._make("unclear", "refuse", key="hostile")

    def _answer(self, intent: str, run_id: str | None = None) -> Reading:
        return self._make(intent, "answer", run_id=run_id)

    def _negated(self) -> bool:
        return self._has(
            (("nao", "aprov"), ("not", "approv"), ("don't", "approv"), ("dont", "approv"), ("nunca", "aprov"))
        )
