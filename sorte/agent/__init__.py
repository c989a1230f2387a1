"""The Sorte agent: a LangGraph state machine from a message to an approved, merged change.

Public surface::

    from sorte.agent import runs
    view = await runs.ask(settings, "aumenta o stop loss do momentum para 3%")
    view = await runs.decide(settings, view.run_id, Decision(approve=True))
"""

from sorte.agent.views import Decision, Intent, RunView

__all__ = ["Decision", "Intent", "RunView"]
