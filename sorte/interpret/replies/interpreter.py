"""What the interpreter says back: its restated reading, its questions and its refusals."""

from __future__ import annotations

from sorte.interpret.replies.detect import Language

INTERPRETER: dict[str, dict[Language, str]] = {
    "restated": {
        "en": "I read: {reading}.",
        "pt": "Entendi: {reading}.",
    },
    "already": {
        "en": "Nothing to change: {reading} already.",
        "pt": "Nada a mudar: {reading} já.",
    },
    "code": {
        "en": "This asks for new strategy logic, not a parameter: it goes to the coder model.",
        "pt": "Isto pede lógica nova de estratégia, não um parâmetro: vai para o modelo programador.",
    },
    "hostile": {
        "en": "I will not do that: I only change strategy parameters, the cascade and strategy code, "
        "always through validation and your approval.",
        "pt": "Não vou fazer isso: só mudo parâmetros de estratégia, a cascata e o código das estratégias, "
        "sempre com validação e a sua aprovação.",
    },
    "unclear": {
        "en": "I did not understand. Try e.g. 'raise momentum's stop loss to 3%', 'status', 'pnl' or 'help'.",
        "pt": "Não entendi. Tente por ex. 'aumenta o stop loss do momentum para 3%', 'status', 'pnl' ou 'ajuda'.",
    },
    "what_value": {
        "en": "What should I change, and to what value?",
        "pt": "O que devo mudar, e para qual valor?",
    },
    "what_value_for": {
        "en": "To what value should I set {target} (now {current})?",
        "pt": "Para qual valor devo colocar {target} (hoje {current})?",
    },
    "which_strategy": {
        "en": "Which strategy? ({options})",
        "pt": "Qual estratégia? ({options})",
    },
    "approve_or_change": {
        "en": "Do you want to approve or reject the change that is waiting (say so with its run id), or to make "
        "this change? Nothing is approved on a message that also asks for a value.",
        "pt": "Você quer aprovar ou rejeitar a mudança que está aguardando (diga com o id da execução), ou fazer "
        "esta mudança? Nada é aprovado com uma mensagem que também pede um valor.",
    },
    "which_param": {
        "en": "Which '{name}'? ({options})",
        "pt": "Qual '{name}'? ({options})",
    },
    "which_strategy_for": {
        "en": "'{name}' exists in several strategies: which one? ({options})",
        "pt": "'{name}' existe em várias estratégias: qual delas? ({options})",
    },
    "unknown_param": {
        "en": "{strategy_name} has no parameter like that. Its parameters: {known}.",
        "pt": "{strategy_name} não tem esse parâmetro. Os parâmetros dela: {known}.",
    },
    "unknown_param_any": {
        "en": "No strategy has a parameter '{name}'. Strategies: {known}.",
        "pt": "Nenhuma estratégia tem o parâmetro '{name}'. Estratégias: {known}.",
    },
    "what_to_change": {
        "en": "What exactly should I change? Name the parameter and the value (e.g. 'momentum stop loss to 3%').",
        "pt": "O que exatamente devo mudar? Diga o parâmetro e o valor (ex.: 'stop loss do momentum para 3%').",
    },
    "which_stage": {
        "en": "Which stage? ({options})",
        "pt": "Qual estágio? ({options})",
    },
    "confirm": {
        "en": "I think you mean {reading}, but I am not sure. Say it with the parameter and the value to go ahead "
        "(e.g. 'momentum stop loss to 3%').",
        "pt": "Acho que você quer {reading}, mas não tenho certeza. Diga com o parâmetro e o valor para seguir "
        "(ex.: 'stop loss do momentum para 3%').",
    },
    "coder_missing": {
        "en": "This needs new strategy code, and the coder role has only the embedded 135M model, which cannot "
        "write it. Configure a coder model: `llm.profile: ollama` in sorte.yaml with an Ollama server, or point "
        "the coder role at an OpenAI-compatible server (llm.roles.coder). Parameter and cascade changes work "
        "as they are.",
        "pt": "Isto exige código novo de estratégia, e o papel coder só tem o modelo embutido de 135M, que não "
        "consegue escrevê-lo. Configure um modelo coder: `llm.profile: ollama` no sorte.yaml com um servidor "
        "Ollama, ou aponte o papel coder para um servidor compatível com OpenAI (llm.roles.coder). Mudanças de "
        "parâmetros e da cascata funcionam como estão.",
    },
    "unit_of": {
        "en": "{target} (now {current}) is not in that unit: which value do you mean?",
        "pt": "{target} (hoje {current}) não usa essa unidade: qual valor você quer?",
    },
    "unknown_param_named": {
        "en": "{strategy_name} has no parameter '{name}'. Its parameters: {known}.",
        "pt": "{strategy_name} não tem o parâmetro '{name}'. Os parâmetros dela: {known}.",
    },
    "out_of_bounds": {
        "en": "{value} is outside the bounds of {target}: {bounds}.",
        "pt": "{value} está fora dos limites de {target}: {bounds}.",
    },
    "not_whole": {
        "en": "{target} is a whole number; {value} is not.",
        "pt": "{target} é um número inteiro; {value} não é.",
    },
    "which_way": {
        "en": "Should {target} (now {current}) go up or down?",
        "pt": "{target} (hoje {current}) deve subir ou descer?",
    },
    "percent_or_points": {
        "en": "{target} is {current}: do you mean {n}% of that, or {n} percentage points?",
        "pt": "{target} está em {current}: você quer {n}% disso, ou {n} pontos percentuais?",
    },
    "percent_of_what": {
        "en": "{target} is {current} and not a percentage: what should {n}% mean?",
        "pt": "{target} está em {current} e não é uma porcentagem: o que {n}% quer dizer?",
    },
    "is_it_percent": {
        "en": "For {target}, did you mean {n}% ({as_percent})? Please write it with %.",
        "pt": "Para {target}, você quis dizer {n}% ({as_percent})? Escreva com %, por favor.",
    },
    "contradiction": {
        "en": "{target} is {current}: going to {n} goes the other way from what you asked. Which is it?",
        "pt": "{target} está em {current}: ir para {n} é o contrário do que você pediu. Qual dos dois?",
    },
    "bad_position": {
        "en": "A stage position is a whole number from 0 to {last}.",
        "pt": "A posição de um estágio é um número inteiro de 0 a {last}.",
    },
    "no_strategy_stage": {
        "en": "The cascade needs at least one strategy stage on: turning it off would stop all trading.",
        "pt": "A cascata precisa de pelo menos um estágio de estratégia ligado: desligá-lo pararia todas as operações.",
    },
}
