"""The Sorte agent: a LangGraph state machine from a message to an approved, merged change.

Public surface::

    from sorte.agent import service
    view = await service.ask(settings, "aumenta o stop loss do momentum para 3%")
    view = await service.decide(settings, view.run_id, Decision(approve=True))
"""

from sorte.agent.models import Decision, Intent, RunView

__all__ = ["Decision", "Intent", "RunView"]
