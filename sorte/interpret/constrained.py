"""Tier 2: the model, asked in small steps whose answers can only name what exists.

Each step's JSON schema is built from the catalogue: the intent from an enum, the target from
the enum of strategies plus ``cascade``, the setting from the enum of that target's settings,
the value as a number inside the declared bounds. Approve, reject and rollback are not in the
model's enum: they need explicit words, a run id or a button. A change read by a model is
never applied unseen: when the role has nothing better than the embedded 135M model, the
reading comes back as a question that restates it; otherwise as an edit that a human must
approve (never auto-approved)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from sorte.editing.plan import EditPlan, SetMinConfidence, SetParam, SetStage
from sorte.interpret import replies
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.numbers import quantities
from sorte.interpret.reading import Change, Reading
from sorte.interpret.text import words
from sorte.interpret.values import show
from sorte.llm.errors import LLMError

#: What the model may answer; "code" is new logic for the coder role.
MODEL_INTENTS = ("change", "code", "optimise", "explain", "lessons", "status", "pnl", "help", "unclear")
ROLE = "standard"

INTENT_PROMPT = """You classify one message a trader sent to Sorte, a trading bot.
Intents: change = set a strategy parameter or a cascade setting to a value; code = new trading logic or a
new strategy; optimise = search for better parameters; explain = how a strategy works or its current
settings; lessons = what the bot learned; status = is the bot running; pnl = profit, losses, positions;
help = what the bot can do; unclear = anything else.
Strategies: {strategies}. Cascade stages: {stages}.
Message: {text}"""
TARGET_PROMPT = """Which strategy does this message talk about? Answer "cascade" when it is about the
cascade (MIN_CONFIDENCE or a stage: {stages}), "none" when it names none.
Strategies: {strategies}.
Message: {text}"""
SETTING_PROMPT = """Which setting of {target} does this message change?
Settings:
{settings}
Message: {text}"""
VALUE_PROMPT = """What new value does this message give {setting} (now {current}, from {low} to {high})?
A percentage of a fraction is divided by 100 (3% is 0.03).
Message: {text}"""


class ModelReader:
    """Tier 2 over one catalogue and one LLM client (``sorte.llm.client.LLM``)."""

    def __init__(self, llm: Any, catalogue: Catalogue, *, weak: bool) -> None:
        self.llm, self.cat, self.weak = llm, catalogue, weak
        self.models = _models(_signature(catalogue))

    async def read(self, text: str, first: Reading) -> Reading:
        """The model's reading, or ``first`` (tier 1's) when the model fails or adds nothing."""
        try:
            return await self._read(text, first)
        except LLMError:
            return first

    async def _read(self, text: str, first: Reading) -> Reading:
        lang = first.language
        strategies = ", ".join(self.cat.strategies) or "none"
        stages = ", ".join(s.name for s in self.cat.stages) or "none"
        intent = (
            await self._ask(INTENT_PROMPT, self.models["intent"], text=text, strategies=strategies, stages=stages)
        ).kind
        if intent == "unclear":
            return first
        if intent == "code" and not self.weak:
            return _reading(first, "change", "code", message=replies.text("code", lang))
        target = None
        if intent in ("change", "optimise", "explain", "lessons"):
            target = (
                await self._ask(TARGET_PROMPT, self.models["target"], text=text, strategies=strategies, stages=stages)
            ).target
        if self.weak and not (intent in ("explain", "lessons", "optimise") and target and target == first.strategy):
            # a 135M model's guess stands only where the message itself names what it is about
            return first
        if intent != "change":
            strategy = target if target in self.cat.strategies else None
            if intent == "optimise" and strategy is None:
                return _reading(
                    first, "optimise", "ask", message=replies.text("which_strategy", lang, options=strategies)
                )
            return _reading(first, intent, "answer", strategy=strategy)
        if target in (None, "none"):
            return _reading(first, "change", "ask", message=replies.text("what_to_change", lang))
        return await self._change(text, first, target)

    async def _change(self, text: str, first: Reading, target: str) -> Reading:
        lang = first.language
        settings = self._settings(target)
        setting = (await self._ask(SETTING_PROMPT, self.models[f"setting:{target}"], text=text, target=target,
                                   settings="\n".join(f"- {k}: {v[0]}" for k, v in settings.items()))).name  # fmt: skip
        doc, current, low, high = settings[setting]
        answer = await self._ask(VALUE_PROMPT, self.models[f"value:{target}:{setting}"], text=text,
                                 setting=setting, current=show(current), low=show(low), high=show(high))  # fmt: skip
        value = answer.value
        if value == current:
            return _reading(
                first,
                "change",
                "answer",
                message=replies.text("already", lang, reading=f"{target}.{setting} = {show(value)}"),
            )
        op = _op(target, setting, value)
        change = Change(target=f"{'cascade' if target == 'cascade' else target}.{setting}", before=current, after=value)
        grounded = _grounded(text, value)
        if self.weak or not grounded:
            return _reading(first, "change", "ask", strategy=_strategy(target),
                            message=replies.text("confirm", lang, reading=change.text()), confidence=0.5)  # fmt: skip
        summary = change.text()
        return Reading(
            intent="change",
            action="edit",
            language=lang,
            strategy=_strategy(target),
            plan=EditPlan(summary=summary, ops=[op]),
            changes=[change],
            message=replies.text("restated", lang, reading=summary),
            confidence=0.7,
            tier=2,
        )

    def _settings(self, target: str) -> dict[str, tuple[str, Any, Any, Any]]:
        return _settings_of(self.cat, target)

    async def _ask(self, template: str, schema: type[BaseModel], **values: str) -> Any:
        prompt = template.format(**values)
        answer = await self.llm.ask(ROLE, [{"role": "user", "content": prompt}], schema, stage="agent.interpret")
        return answer.value


def _settings_of(cat: Catalogue, target: str) -> dict[str, tuple[str, Any, Any, Any]]:
    """name -> (doc, current, low, high) of what a request may set on ``target``."""
    if target == "cascade":
        out: dict[str, tuple[str, Any, Any, Any]] = {
            "MIN_CONFIDENCE": ("score a decision needs to trade", cat.min_confidence, 0.0, 1.0)
        }
        for s in cat.stages:
            out[f"{s.name}.threshold"] = (f"discard threshold of stage {s.name}", s.threshold, 0.0, 1.0)
            out[f"{s.name}.weight"] = (f"weight of stage {s.name}", s.weight, 0.0, 100.0)
            out[f"{s.name}.enabled"] = (f"stage {s.name} on or off", s.enabled, False, True)
        return out
    entry = cat.strategies[target]
    return {p.name: (p.doc, p.value, p.min, p.max) for p in entry.params.values()}


def _op(target: str, setting: str, value: Any) -> SetParam | SetStage | SetMinConfidence:
    if target != "cascade":
        return SetParam(strategy=target, name=setting, value=value)
    if setting == "MIN_CONFIDENCE":
        return SetMinConfidence(value=value)
    stage, field_ = setting.split(".", 1)
    return SetStage(stage=stage, **{field_: value})


def _strategy(target: str) -> str | None:
    return None if target == "cascade" else target


def _grounded(text: str, value: Any) -> bool:
    """The value, or its percent, is written in the message (a model may not invent numbers)."""
    if isinstance(value, bool):
        return True
    said = {q.value for q in quantities(words(text))}
    return any(abs(value - v) < 1e-9 or abs(value - v / 100) < 1e-9 for v in said)


def _reading(first: Reading, intent: str, action: str, **fields: Any) -> Reading:
    data = {"intent": intent, "action": action, "language": first.language, "tier": 2, "confidence": 0.6}
    return Reading.model_validate({**data, **fields})


def _signature(cat: Catalogue) -> tuple:
    """What the schemas depend on, hashable: one set of answer models per distinct catalogue."""
    strategies = tuple(
        (s.name, tuple((p.name, p.type, p.value, p.min, p.max) for p in s.params.values()))
        for s in cat.strategies.values()
    )
    stages = tuple((s.name, s.threshold, s.weight, s.enabled) for s in cat.stages)
    return strategies, stages, cat.min_confidence


@lru_cache(maxsize=16)
def _models(signature: tuple) -> dict[str, type[BaseModel]]:
    """The answer models of every step, built once per catalogue signature."""
    strategies, stages, min_confidence = signature
    cat = Catalogue.model_validate(
        {
            "strategies": {
                name: {
                    "name": name,
                    "params": {
                        p: {"name": p, "type": t, "value": v, "min": lo, "max": hi} for p, t, v, lo, hi in params
                    },
                }
                for name, params in strategies
            },
            "stages": [
                {"name": n, "kind": "llm", "position": i, "threshold": th, "weight": w, "enabled": e}
                for i, (n, th, w, e) in enumerate(stages)
            ],
            "min_confidence": min_confidence,
        }
    )
    targets = (*cat.strategies, "cascade", "none")
    intents: Any = Literal[MODEL_INTENTS]  # enums built at run time from the catalogue
    named: Any = Literal[targets]
    models: dict[str, type[BaseModel]] = {
        "intent": create_model("ModelIntent", kind=(intents, ...)),
        "target": create_model("ModelTarget", target=(named, ...)),
    }
    for target in (*cat.strategies, "cascade"):
        settings = _settings_of(cat, target)
        if not settings:
            continue
        names: Any = Literal[tuple(settings)]
        models[f"setting:{target}"] = create_model(f"ModelSetting_{target}", name=(names, ...))
        for name, (_doc, current, low, high) in settings.items():
            field: Any
            if isinstance(current, bool):
                field = (bool, ...)
            elif isinstance(current, int):
                field = (int, Field(..., ge=low, le=high))
            else:
                field = (float, Field(..., ge=low, le=high))
            models[f"value:{target}:{name}"] = create_model(f"ModelValue_{target}_{name}", value=field)
    return models
