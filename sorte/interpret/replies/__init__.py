"""Everything Sorte says back, in Portuguese and English, and the language to say it in.

One table for the interpreter, the agent and the Telegram bot (each key once: a front-end that
shows an agent's answer and its own texts side by side can never pick the wrong one), and the
message's language told from its own words. The bot's texts are HTML; ``sorte.telegram.texts``
escapes the values it puts into them.
"""

from __future__ import annotations

from sorte.interpret.replies.agent import AGENT
from sorte.interpret.replies.bot import ACTIONS, BOT, NODES
from sorte.interpret.replies.detect import Language, language
from sorte.interpret.replies.interpreter import INTERPRETER

__all__ = ["TEXTS", "Language", "action_text", "language", "node_text", "template", "text"]


def _merged(*tables: dict[str, dict[Language, str]]) -> dict[str, dict[Language, str]]:
    merged: dict[str, dict[Language, str]] = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise ValueError(f"reply keys defined twice: {sorted(twice)}")
        merged |= table
    return merged


TEXTS = _merged(INTERPRETER, AGENT, BOT)


def _known(lang: str) -> Language:
    """A language the tables have: a chat may remember anything; English where it is neither."""
    return "pt" if lang == "pt" else "en"


def template(key: str, lang: str) -> str:
    """The text ``key`` in ``lang``, placeholders unfilled."""
    return TEXTS[key][_known(lang)]


def text(key: str, lang: str, **values: object) -> str:
    """The text ``key`` in ``lang`` with ``values`` filled in."""
    return template(key, lang).format(**values)


def node_text(lang: str, node: str) -> str:
    """What a run is doing while it is in graph node ``node`` (the node's name if it has no text)."""
    texts = NODES.get(node)
    return texts[_known(lang)] if texts else node


def action_text(lang: str, action: str) -> str:
    """An action a viewer may not take, as the refusal names it."""
    texts = ACTIONS.get(action)
    return texts[_known(lang)] if texts else action
