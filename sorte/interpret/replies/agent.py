"""What the agent answers: the model-free answers (status, PnL, settings, lessons) and how a
run ended (merged, rejected, refused, failed), and the approval question."""

from __future__ import annotations

from sorte.interpret.replies.detect import Language

AGENT: dict[str, dict[Language, str]] = {
    "status_answer": {
        "en": "Trading: {health}{paused}; active deployment: {active}; open positions: {positions}. "
        "Agent runs: {runs} ({counts}); waiting for approval: {waiting}.",
        "pt": "Operação: {health}{paused}; deployment ativo: {active}; posições abertas: {positions}. "
        "Execuções do agente: {runs} ({counts}); aguardando aprovação: {waiting}.",
    },
    "status_paused": {"en": " (paused)", "pt": " (pausado)"},
    "pnl": {
        "en": "Equity {equity} ({ret}% on {initial}); realised PnL {pnl}, fees {fees}; "
        "{closed} closed trades, win rate {win}; max drawdown {dd}%. Open positions: {positions}.",
        "pt": "Patrimônio {equity} ({ret}% sobre {initial}); PnL realizado {pnl}, taxas "
        "{fees}; {closed} operações fechadas, taxa de acerto {win}; drawdown máximo {dd}%. "
        "Posições abertas: {positions}.",
    },
    "no_book": {
        "en": "No trades yet: nothing has traded (start it with `sorte up`).",
        "pt": "Nenhuma operação ainda: nada operou (comece com `sorte up`).",
    },
    "none": {"en": "none", "pt": "nenhuma"},
    "lessons": {"en": "What I learned{about}:\n{items}", "pt": "O que aprendi{about}:\n{items}"},
    "about": {"en": " about {strategy}", "pt": " sobre {strategy}"},
    "no_lessons_yet": {
        "en": "No lessons yet{about}: they come from changes that were validated, approved or rejected.",
        "pt": "Nenhuma lição ainda{about}: elas vêm de mudanças validadas, aprovadas ou rejeitadas.",
    },
    "settings": {"en": "Current settings:\n{text}", "pt": "Configuração atual:\n{text}"},
    "unauthorised": {
        "en": "You are not allowed to command this bot.",
        "pt": "Você não tem permissão para comandar este bot.",
    },
    "merged": {
        "en": "Done: {summary}. Merged as {sha} and handed to the commander ({deploy}).",
        "pt": "Feito: {summary}. Integrado como {sha} e entregue ao commander ({deploy}).",
    },
    "rejected": {
        "en": "Change rejected; branch {branch} abandoned, nothing deployed.",
        "pt": "Mudança rejeitada; branch {branch} abandonada, nada foi implantado.",
    },
    "validation_failed": {
        "en": "I could not make this change pass validation after {attempts} attempt(s): {reasons}",
        "pt": "Não consegui fazer esta mudança passar na validação após {attempts} tentativa(s): {reasons}",
    },
    "change_refused": {
        "en": "I will not make this change: {reason}",
        "pt": "Não vou fazer esta mudança: {reason}",
    },
    "help": {
        "en": "Tell me what to change in a strategy (e.g. 'raise momentum's stop loss to 3%'), ask about a "
        "strategy, or ask for the status. Every change is validated in a sandbox and waits for your approval.",
        "pt": "Diga o que mudar numa estratégia (ex.: 'aumenta o stop loss do momentum para 3%'), pergunte sobre "
        "uma estratégia ou peça o status. Toda mudança é validada num sandbox e espera a sua aprovação.",
    },
    "rolled_back": {
        "en": "Rollback: {result}",
        "pt": "Rollback: {result}",
    },
    "rollback_failed": {
        "en": "Could not roll back: {reason}",
        "pt": "Não foi possível fazer o rollback: {reason}",
    },
    "no_better": {
        "en": "No parameter set beats the current one on the benchmark markets: {reason}",
        "pt": "Nenhum conjunto de parâmetros supera o atual nos mercados de benchmark: {reason}",
    },
    "nothing_waiting": {
        "en": "No change is waiting for approval.",
        "pt": "Nenhuma mudança está aguardando aprovação.",
    },
    "which_run": {
        "en": "Several changes wait for approval ({runs}): which one? Include its run id.",
        "pt": "Várias mudanças aguardam aprovação ({runs}): qual delas? Inclua o id da execução.",
    },
    "approval": {
        "en": "Approve this change? {summary}\n{verdict}",
        "pt": "Aprovar esta mudança? {summary}\n{verdict}",
    },
    # A commander health state, as the status answer says it.
    "health_trading": {"en": "running", "pt": "rodando"},
    "health_paused": {"en": "paused", "pt": "pausada"},
    "health_degraded": {"en": "degraded", "pt": "degradada"},
    "health_stopped": {"en": "stopped", "pt": "parada"},
}
