"""How the bot writes a text of the shared table (``sorte.interpret.replies``): as HTML.

The language of a reply: the language of the message being answered when it has words to go
by, else the chat's last language (kept in the state file), else ``telegram.language``.
The bot sends with parse_mode=HTML: values put into a text are escaped by :func:`t`, so a
strategy name or an error message cannot break the markup.
"""

from __future__ import annotations

import html
from typing import Any

from sorte.interpret.replies import action_text, node_text, template

__all__ = ["Html", "action_text", "esc", "node_text", "t"]


class Html(str):
    """Text that is HTML already (made by :func:`t`): put into another text as it is."""


def t(lang: str, key: str, **values: Any) -> str:
    """The text ``key`` in ``lang`` with ``values`` HTML-escaped (numbers keep their format specs;
    an :class:`Html` value is escaped already). Returned as :class:`Html`, typed as ``str`` so
    that texts add up; a sum is wrapped in :class:`Html` again to go into another text."""
    safe = {
        k: html.escape(v, quote=False) if isinstance(v, str) and not isinstance(v, Html) else v
        for k, v in values.items()
    }
    return Html(template(key, lang).format(**safe))


def esc(value: Any) -> str:
    return html.escape(str(value), quote=False)
