"""Sorte's Telegram front-end: commands, plain-language requests to the agent, approvals with
buttons and pushed alerts, all through :mod:`sorte.service`.

``build_application(settings)`` gives the python-telegram-bot Application with its handlers;
``run_bot(settings, stop)`` runs it (and the alert pusher) inside the caller's event loop
until ``stop`` is set.
"""

from sorte.telegram.bot import COMMANDS, build_application, run_bot

__all__ = ["COMMANDS", "build_application", "run_bot"]
