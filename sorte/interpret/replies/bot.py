"""What the Telegram bot writes: its commands' answers, the approval message, alerts, the
progress of a run (one line per graph node) and the actions a viewer may not take.

The texts are HTML (the bot sends with parse_mode=HTML); ``sorte.telegram.texts`` escapes the
values put into them."""

from __future__ import annotations

from sorte.interpret.replies.detect import Language

BOT: dict[str, dict[Language, str]] = {
    "refused": {
        "en": "This bot is private. Ask its operator to add your user id {user_id}.",
        "pt": "Este bot é privado. Peça ao operador para adicionar o seu id de utilizador {user_id}.",
    },
    "operator_only": {
        "en": "Only operators may {action}; you are a viewer.",
        "pt": "Só operadores podem {action}; você é observador.",
    },
    "start": {
        "en": "Sorte here. You are {role}. /help lists what I understand; as an operator you can also write "
        "requests in plain words (for example: raise momentum's stop loss to 3%).",
        "pt": "Aqui é o Sorte. Você é {role}. /help mostra o que entendo; como operador também pode escrever "
        "pedidos em palavras simples (por exemplo: aumenta o stop loss do momentum para 3%).",
    },
    "role_operator": {"en": "an operator", "pt": "operador"},
    "role_viewer": {"en": "a viewer", "pt": "observador"},
    "help_read": {
        "en": "<b>Reading</b>\n/status overview\n/positions open positions\n/trades [n] latest fills\n"
        "/profit results\n/balance equity and cash\n/strategies strategies and parameters\n/runs agent runs\n"
        "/run ID one run\n/diff ID a run's change\n/deploys deployments\n/lessons [words] what the agent learnt\n"
        "/logs [n] last log lines\n/alerts [n] latest alerts\n/mute [kind|list] /unmute kind  alerts in this chat",
        "pt": "<b>Leitura</b>\n/status visão geral\n/positions posições abertas\n/trades [n] últimas execuções\n"
        "/profit resultados\n/balance património e caixa\n/strategies estratégias e parâmetros\n"
        "/runs execuções do agente\n/run ID uma execução\n/diff ID a alteração de uma execução\n"
        "/deploys implantações\n/lessons [palavras] o que o agente aprendeu\n/logs [n] últimas linhas do log\n"
        "/alerts [n] últimos alertas\n/mute [tipo|list] /unmute tipo  alertas neste chat",
    },
    "help_operate": {
        "en": "<b>Operating</b>\n/approve ID /reject ID a waiting change\n/rollback [ID] [reason] back to the "
        "previous (or given) deployment\n/pause (/stopentry) stop new entries\n/resume (/startentry) allow them "
        "again\n/reload_config re-read who may use the bot and the language\nAny other text: a request to the agent.",
        "pt": "<b>Operação</b>\n/approve ID /reject ID uma alteração à espera\n/rollback [ID] [motivo] voltar à "
        "implantação anterior (ou à indicada)\n/pause (/stopentry) parar novas entradas\n/resume (/startentry) "
        "permiti-las de novo\n/reload_config reler quem pode usar o bot e o idioma\n"
        "Qualquer outro texto: um pedido ao agente.",
    },
    "bad_number": {
        "en": "{what} must be a whole number above 0, not “{value}”.",
        "pt": "{what} tem de ser um número inteiro maior que 0, não “{value}”.",
    },
    "bad_run_id": {
        "en": "“{value}” is not a run id (they look like 20261122-201500-a1b2c3; /runs lists them).",
        "pt": "“{value}” não é um id de execução (são assim: 20261122-201500-a1b2c3; /runs lista-os).",
    },
    "usage": {"en": "Usage: {usage}", "pt": "Uso: {usage}"},
    "not_found": {"en": "Not found: {message}", "pt": "Não encontrado: {message}"},
    "failed": {"en": "That did not work: {message}", "pt": "Não funcionou: {message}"},
    "error": {
        "en": "Something went wrong on my side ({message}); the log has the details.",
        "pt": "Algo correu mal do meu lado ({message}); o log tem os detalhes.",
    },
    "working": {"en": "Working on it…", "pt": "A trabalhar nisso…"},
    "step": {"en": "Working on it… {step}", "pt": "A trabalhar nisso… {step}"},
    "no_reply": {"en": "Done (run {run_id}, {outcome}).", "pt": "Feito (execução {run_id}, {outcome})."},
    "awaiting": {
        "en": "Run {run_id} passed the checks and waits for your approval (below).",
        "pt": "A execução {run_id} passou as verificações e espera a sua aprovação (abaixo).",
    },
    "none_yet": {"en": "Nothing yet.", "pt": "Nada ainda."},
    "paused": {
        "en": "New entries stopped; open positions are still managed (exits, stops, take-profits).",
        "pt": "Novas entradas paradas; as posições abertas continuam geridas (saídas, stops, take-profits).",
    },
    "resumed": {"en": "New entries allowed again.", "pt": "Novas entradas permitidas de novo."},
    "rollback_done": {"en": "Rollback done: {message}", "pt": "Rollback feito: {message}"},
    "approval_title": {
        "en": "<b>Approval needed</b> — run <code>{run_id}</code>",
        "pt": "<b>Aprovação necessária</b> — execução <code>{run_id}</code>",
    },
    "request": {"en": "Request", "pt": "Pedido"},
    "plan": {"en": "Plan", "pt": "Plano"},
    "verdict": {"en": "Verdict", "pt": "Veredito"},
    "diff_attached": {
        "en": "The change is long ({lines} lines): attached as {name}.",
        "pt": "A alteração é longa ({lines} linhas): vai em anexo como {name}.",
    },
    "diff_caption": {"en": "Change of run {run_id}", "pt": "Alteração da execução {run_id}"},
    "approve_button": {"en": "✅ Approve", "pt": "✅ Aprovar"},
    "reject_button": {"en": "❌ Reject", "pt": "❌ Rejeitar"},
    "deciding": {"en": "Deciding run {run_id}…", "pt": "A decidir a execução {run_id}…"},
    "approved_by": {"en": "✅ Approved by {who}.", "pt": "✅ Aprovada por {who}."},
    "rejected_by": {"en": "❌ Rejected by {who}.", "pt": "❌ Rejeitada por {who}."},
    "outcome": {"en": "Outcome: {outcome}.", "pt": "Resultado: {outcome}."},
    "already_decided": {
        "en": "Run {run_id} is already decided ({outcome}).",
        "pt": "A execução {run_id} já foi decidida ({outcome}).",
    },
    "being_decided": {"en": "Run {run_id} is being decided.", "pt": "A execução {run_id} está a ser decidida."},
    "not_waiting": {
        "en": "Run {run_id} is not waiting for approval (it is {status}).",
        "pt": "A execução {run_id} não está à espera de aprovação (está {status}).",
    },
    "viewer_button": {
        "en": "Only operators may approve or reject.",
        "pt": "Só operadores podem aprovar ou rejeitar.",
    },
    "muted": {
        "en": "Alerts of kind {kind} are muted in this chat. /unmute {kind} undoes it.",
        "pt": "Alertas do tipo {kind} silenciados neste chat. /unmute {kind} desfaz.",
    },
    "unmuted": {"en": "Alerts of kind {kind} are back on.", "pt": "Alertas do tipo {kind} de volta."},
    "not_muted": {"en": "{kind} was not muted.", "pt": "{kind} não estava silenciado."},
    "mutes": {"en": "Muted here: {kinds}", "pt": "Silenciados aqui: {kinds}"},
    "no_mutes": {"en": "Nothing is muted in this chat.", "pt": "Nada está silenciado neste chat."},
    "alert": {"en": "⚠️ <b>{kind}</b>: {message}", "pt": "⚠️ <b>{kind}</b>: {message}"},
    "more_alerts": {
        "en": "…and {n} more alerts ({kinds}) held back by the rate limit; /alerts shows them.",
        "pt": "…e mais {n} alertas ({kinds}) retidos pelo limite de envio; /alerts mostra-os.",
    },
    "reloaded": {"en": "Settings re-read. Changed: {changes}", "pt": "Configuração relida. Mudou: {changes}"},
    "reload_same": {
        "en": "Settings re-read: nothing changed for the bot (users, chats, language, alert chats, limits).",
        "pt": "Configuração relida: nada mudou para o bot (utilizadores, chats, idioma, chats de alerta, limites).",
    },
    "reload_failed": {
        "en": "The settings could not be read; the bot keeps the old ones: {message}",
        "pt": "Não consegui ler a configuração; o bot mantém a anterior: {message}",
    },
    "status": {
        "en": "<b>Sorte</b>: {health}{paused}\nCommander: {commander}\nActive: {active}\nSlot holding the lease: "
        "{slot}\n{profit}\nOpen positions: {positions}\nRuns waiting for approval: {waiting}{feed}{account}",
        "pt": "<b>Sorte</b>: {health}{paused}\nComandante: {commander}\nAtiva: {active}\nSlot com o lease: {slot}\n"
        "{profit}\nPosições abertas: {positions}\nExecuções à espera de aprovação: {waiting}{feed}{account}",
    },
    "account_ok": {
        "en": "\nAccount: reconciled at epoch {epoch} {age} ago, {orders} open orders as the ledger says",
        "pt": "\nConta: reconciliada na época {epoch} há {age}, {orders} ordens abertas como no registo",
    },
    "account_refused": {
        "en": "\n⛔ Account differs from the ledger, trading refused: {differences}",
        "pt": "\n⛔ A conta difere do registo, negociação recusada: {differences}",
    },
    "account_accept_hint": {
        "en": "\nA deposit or a withdrawal? <code>sorte reconcile --accept</code> takes these balances as right.",
        "pt": "\nUm depósito ou levantamento? <code>sorte reconcile --accept</code> aceita estes saldos.",
    },
    "running": {"en": "running", "pt": "a correr"},
    "not_running": {"en": "not running", "pt": "parado"},
    "entries_paused": {"en": " (new entries paused)", "pt": " (novas entradas em pausa)"},
    "profit_line": {
        "en": "Equity {equity:.2f} ({ret:+.2f}%), realised {realised:+.2f}, fees {fees:.2f}",
        "pt": "Património {equity:.2f} ({ret:+.2f}%), realizado {realised:+.2f}, taxas {fees:.2f}",
    },
    "no_profit": {"en": "No trading yet.", "pt": "Ainda sem negociação."},
    "feed_line": {
        "en": "\nFeed: {what}, {count} symbols ({symbols}), {last_bar}, lag {lag}, {reconnects} reconnects, "
        "{backfilled} backfilled and {streamed} streamed candles, clock offset {offset:+.2f} s",
        "pt": "\nDados de mercado: {what}, {count} símbolos ({symbols}), {last_bar}, atraso {lag}, "
        "{reconnects} religações, {backfilled} velas recuperadas e {streamed} recebidas em stream, "
        "desvio do relógio {offset:+.2f} s",
    },
    "feed_last_bar": {"en": "last bar {age} ago", "pt": "última barra há {age}"},
    "feed_no_bar": {"en": "no bar yet", "pt": "ainda sem barras"},
    "feed_at_bar": {"en": "at bar {seq}", "pt": "na barra {seq}"},
    "feed_stale": {
        "en": "\n⚠ Stale: {symbols}; new entries blocked",
        "pt": "\n⚠ Sem dados novos: {symbols}; novas entradas bloqueadas",
    },
    "feed_closed": {
        "en": "\nMarket closed (no bars are due){opens}",
        "pt": "\nMercado fechado (sem barras até abrir){opens}",
    },
    "feed_opens": {"en": ", opens {when} UTC", "pt": ", abre às {when} UTC"},
    "feed_old_stopped": {
        "en": "\n(as of {when} UTC, commander not running)",
        "pt": "\n(às {when} UTC, comandante parado)",
    },
    "feed_old_silent": {
        "en": "\n(as of {when} UTC, not updated for {age})",
        "pt": "\n(às {when} UTC, sem atualização há {age})",
    },
    "profit": {
        "en": "<b>Profit</b>\nStart {initial:.2f} → equity {equity:.2f} ({ret:+.2f}%)\nRealised {realised:+.2f}, "
        "fees {fees:.2f}\nClosed trades {closed}, wins {wins} ({win_rate})\nMax drawdown {dd:.2f}%\nSteps {steps}",
        "pt": "<b>Lucro</b>\nInício {initial:.2f} → património {equity:.2f} ({ret:+.2f}%)\nRealizado {realised:+.2f}, "
        "taxas {fees:.2f}\nTrades fechados {closed}, ganhos {wins} ({win_rate})\nDrawdown máximo {dd:.2f}%\n"
        "Passos {steps}",
    },
    "balance": {
        "en": "<b>Balance</b>\nEquity {equity:.2f}\nCash {cash:.2f}\nStarted with {initial:.2f}",
        "pt": "<b>Saldo</b>\nPatrimónio {equity:.2f}\nCaixa {cash:.2f}\nInício {initial:.2f}",
    },
    "positions_title": {"en": "<b>Open positions</b>", "pt": "<b>Posições abertas</b>"},
    "no_positions": {"en": "No open positions.", "pt": "Sem posições abertas."},
    "trades_title": {"en": "<b>Latest fills</b>", "pt": "<b>Últimas execuções</b>"},
    "no_trades": {"en": "No fills yet.", "pt": "Ainda sem execuções."},
    "strategies_title": {"en": "<b>Strategies</b>", "pt": "<b>Estratégias</b>"},
    "runs_title": {"en": "<b>Agent runs</b>", "pt": "<b>Execuções do agente</b>"},
    "no_runs": {"en": "The agent has no runs yet.", "pt": "O agente ainda não tem execuções."},
    "deploys_title": {"en": "<b>Deployments</b>", "pt": "<b>Implantações</b>"},
    "no_deploys": {"en": "Nothing deployed yet.", "pt": "Nada implantado ainda."},
    "lessons_title": {"en": "<b>Lessons</b>", "pt": "<b>Lições</b>"},
    "no_lessons": {"en": "No lessons found.", "pt": "Nenhuma lição encontrada."},
    "no_logs": {"en": "No log lines yet.", "pt": "Ainda sem linhas de log."},
    "alerts_title": {"en": "<b>Latest alerts</b>", "pt": "<b>Últimos alertas</b>"},
    "no_alerts": {"en": "No alerts.", "pt": "Sem alertas."},
    "run": {
        "en": "<b>Run</b> <code>{run_id}</code>: {status}{outcome}\nRequest: {request}\nFrom: {sender}\n{extra}",
        "pt": "<b>Execução</b> <code>{run_id}</code>: {status}{outcome}\nPedido: {request}\nDe: {sender}\n{extra}",
    },
}

NODES: dict[str, dict[Language, str]] = {
    "receive": {"en": "checking who asks", "pt": "a verificar quem pede"},
    "interpret": {"en": "understanding the request", "pt": "a entender o pedido"},
    "answer": {"en": "answering", "pt": "a responder"},
    "recall": {"en": "recalling lessons", "pt": "a recordar lições"},
    "optimise": {"en": "searching the parameters (backtests in the sandbox)", "pt": "a procurar os parâmetros"},
    "plan": {"en": "planning the edit", "pt": "a planear a alteração"},
    "edit": {"en": "editing on a branch", "pt": "a editar num ramo"},
    "validate": {"en": "validating in the sandbox", "pt": "a validar na sandbox"},
    "approve": {"en": "asking for approval", "pt": "a pedir aprovação"},
    "publish": {"en": "merging", "pt": "a integrar"},
    "deploy": {"en": "handing over to the commander", "pt": "a entregar ao comandante"},
    "learn": {"en": "storing the lesson", "pt": "a guardar a lição"},
    "report": {"en": "reporting", "pt": "a relatar"},
}

ACTIONS: dict[str, dict[Language, str]] = {
    "approve": {"en": "approve changes", "pt": "aprovar alterações"},
    "reject": {"en": "reject changes", "pt": "rejeitar alterações"},
    "rollback": {"en": "roll back", "pt": "fazer rollback"},
    "pause": {"en": "pause entries", "pt": "pausar entradas"},
    "resume": {"en": "resume entries", "pt": "retomar entradas"},
    "ask": {"en": "send requests to the agent", "pt": "enviar pedidos ao agente"},
    "reload_config": {"en": "reload the settings", "pt": "recarregar a configuração"},
}
