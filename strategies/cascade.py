"""The cascade the runtime trades with.

Stages run in order on every bar of every symbol. Each scores the bar in [0, 1]; a stage
whose score is below its ``threshold`` discards the bar and later stages do not run. The
first stage that names a side (BUY/SELL) proposes it; a later stage that names the other
side discards the bar. When every enabled stage passed, the decision's confidence is the
``weight``-ed mean of their scores, and it trades only if that is at least MIN_CONFIDENCE.

Stage kinds:
- ``strategy``: a module of this folder (``"strategy": name``, optional ``"params"``);
- ``technical``: deterministic agreement of RSI, MACD and Bollinger %b with the side;
- ``llm``: a language-model stage (``"role"``, ``"prompt"``); it falls back to the
  technical score whenever no model answers in time.

This file is data: the agent edits these literals in place.
"""

MIN_CONFIDENCE = 0.75

STAGES = [
    {"name": "momentum", "kind": "strategy", "strategy": "momentum", "threshold": 0.5, "weight": 1.0, "enabled": True, "aliases": ["estágio momentum", "momentum stage"]},
    {"name": "technical", "kind": "technical", "threshold": 0.55, "weight": 1.0, "enabled": True, "aliases": ["técnico", "estágio técnico", "análise técnica", "indicadores", "technical stage", "technical analysis"]},
    {"name": "sentiment", "kind": "llm", "role": "fast", "prompt": "sentiment", "threshold": 0.75, "weight": 1.0, "enabled": False, "aliases": ["sentimento", "filtro de sentimento", "sentiment filter", "sentiment stage"]},
    {"name": "analysis", "kind": "llm", "role": "standard", "prompt": "technical", "threshold": 0.6, "weight": 1.0, "enabled": False, "aliases": ["análise", "análise do llm", "llm analysis", "analysis stage"]},
    {"name": "risk", "kind": "llm", "role": "reasoning", "prompt": "risk", "threshold": 0.5, "weight": 1.0, "enabled": False, "aliases": ["risco", "gestão de risco", "risk check", "risk stage"]},
    {"name": "validation", "kind": "llm", "role": "coder", "prompt": "validation", "threshold": 0.5, "weight": 1.0, "enabled": False, "aliases": ["validação", "validação de dados", "data validation", "validation stage"]},
    {"name": "final", "kind": "llm", "role": "sentiment", "prompt": "final", "threshold": 0.0, "weight": 2.0, "enabled": False, "aliases": ["nota final", "score final", "decisão final", "final score", "final stage"]},
]
