"""The message's language, told from its own words: the reply follows the message, never the
model."""

from __future__ import annotations

import re
from typing import Literal

from sorte.interpret.text import ENGLISH, PORTUGUESE, words

Language = Literal["pt", "en"]

_EN_AFTER_DO = frozenset({"you", "i", "we", "they", "it", "not", "that", "this", "so", "more", "less", "one"})


def language(text: str) -> Language:
    """pt or en, from the message's own words; accents and ç tip a tie to Portuguese."""
    found = words(text)
    # "do" / "no" are Portuguese articles too ("stop do momentum"), unless English grammar follows
    pt = sum(
        w in PORTUGUESE or (w in ("do", "no") and i > 0 and (i + 1 == len(found) or found[i + 1] not in _EN_AFTER_DO))
        for i, w in enumerate(found)
    )
    en = sum(
        w in ENGLISH or (w == "do" and (i == 0 or (i + 1 < len(found) and found[i + 1] in _EN_AFTER_DO)))
        for i, w in enumerate(found)
    )
    if pt != en:
        return "pt" if pt > en else "en"
    return "pt" if re.search(r"[ãõçáéíóúâêô]", text.lower()) else "en"
