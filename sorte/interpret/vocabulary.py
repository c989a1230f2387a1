"""The words that carry a request's intent, as the interpreter compares them (accents off).
Phrases are word tuples matched exactly; single words may be a prefix ("aument" for aumenta,
aumentar, aumente)."""

from __future__ import annotations

#: Verbs and words that raise or lower a value; an entry ending in * is a prefix.
UP = ("aument*", "afrouxa*", "afrouxe", "folga*", "sobe", "sobem", "subir", "suba", "subindo", "elev*", "ampli*",
      "alarg*", "acrescent*", "raise*",
      "increas*", "bump*", "widen*", "lengthen*", "loosen*", "boost*", "up", "higher", "mais", "maior", "bigger",
      "larger", "longer")  # fmt: skip
DOWN = ("diminu*", "reduz*", "reduc*", "baix*", "abaix*", "encurt*", "estreit*", "apert*", "lower*", "decreas*",
        "cut", "cuts", "drop*", "tighten*", "narrow*", "shorten*", "down", "less", "menos", "menor", "smaller",
        "shorter", "tighter")  # fmt: skip
#: Verbs that set a value without saying which way.
SET = ("mud*", "alter*", "coloc*", "bota", "botar", "bote", "poe", "ponha", "deix*", "defin*", "set", "sets",
       "seta", "setar", "sete", "ajust*", "troc*", "configur*", "change*", "make", "put", "updat*", "use", "usa",
       "usar", "fix*", "fica", "ficar", "joga", "jogar", "manda", "mande", "switch")  # fmt: skip
#: Words that make a number an amount to add or take away ("add 4 bars", "tira 3 pontos").
ADD = ("add", "adds", "adiciona*", "acrescenta*", "soma*", "another", "extra", "mais", "plus")
SUBTRACT = ("tira", "tirar", "tire", "subtrai*", "subtract*", "minus", "menos", "desconta*")
ON = ("liga", "ligar", "ligue", "religa", "ativ*", "habilit*", "reativ*", "enable*", "activat*", "reactivat*")
OFF = ("desliga*", "desativ*", "desabilit*", "disable*", "deactivat*", "off", "tira", "tirar", "tire", "remov*",
       "kill", "pausa*", "pause*")  # fmt: skip
#: "to" / "by" after a verb: an absolute value, or a change by that much ("em" and "de" only
#: with a verb that gives the direction: "coloca em 3%" sets, "aumenta em 1%" adds).
TO = ("para", "pra", "pro", "to", "=", "at", "a", "ate", "pros", "into")
BY = ("by", "em", "de")
THRESHOLD = ("limiar", "threshold", "thresh", "corte", "limite", "cutoff", "cut-off")
WEIGHT = ("peso", "weight", "pesos", "weights")
POSITION = ("posicao", "position", "ordem", "order", "lugar", "place", "slot")
FIRST = ("primeiro", "primeira", "first", "inicio", "comeco", "topo", "top", "frente", "front", "start")
LAST = ("ultimo", "ultima", "last", "fim", "end", "bottom", "tras")
ORDINALS = {"segundo": 1, "segunda": 1, "second": 1, "terceiro": 2, "terceira": 2, "third": 2, "quarto": 3,
            "quarta": 3, "fourth": 3, "quinto": 4, "quinta": 4, "fifth": 4, "sexto": 5, "sexta": 5,
            "sixth": 5, "setimo": 6, "setima": 6, "seventh": 6}  # fmt: skip
BEFORE = ("antes", "before", "ahead")
#: A stage moved earlier or later by a number of places.
EARLIER = ("adianta*", "antecipa*", "earlier", "forward", "up", "sobe", "subir", "suba")
LATER = ("atrasa*", "later", "backward*", "down", "desce", "descer", "desca", "back")
AFTER = ("depois", "after", "apos", "behind")
#: Words that qualify a parameter into one no strategy has ("limite de perda diária").
QUALIFIERS = frozenset(
    {
        "diaria",
        "diario",
        "daily",
        "semanal",
        "weekly",
        "mensal",
        "monthly",
        "anual",
        "yearly",
        "trailing",
        "movel",
        "dinamico",
        "dynamic",
        "global",
        "total",
        "portfolio",
        "carteira",
    }
)
#: "all three strategies", "todas as estratégias": one change for every strategy that has it.
ALL_STRATEGIES: tuple[tuple[str, ...], ...] = (
    ("all", "three"), ("all", "strategies"), ("all", "the", "strategies"), ("every", "strategy"),
    ("todas", "as", "estrategias"), ("todas", "estrategias"), ("as", "tres"), ("nas", "tres"), ("todas", "as", "tres"),
    ("each", "strategy"), ("cada", "estrategia"),
)  # fmt: skip
#: Words that name a parameter only in general ("the period of the slow SMA").
GENERIC = frozenset({"periodo", "period", "janela", "window", "length", "comprimento", "lookback", "tamanho"})
#: Words that may stand between a generic word and the parameter it qualifies.
CONNECTORS = frozenset({"de", "do", "da", "dos", "das", "of", "the", "a", "o", "for", "pra", "para"})
STAGE_WORDS = ("estagio", "estagios", "stage", "stages", "etapa", "etapas", "cascata", "cascade", "filtro", "filter")

#: Intents other than a change, as phrases (tuples of words; a word ending in * is a prefix).
INTENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "approve": (("aprov*",), ("approv*",), ("lgtm",), ("pode", "mergear"), ("pode", "fazer", "o", "merge"),
                ("merge", "it"), ("ship", "it"), ("manda", "bala"), ("go", "ahead")),
    "reject": (("scrap*",), ("joga", "fora"), ("throw", "it", "away"), ("dispensa*",), ("rejeit*",), ("recus*",),
               ("reject*",), ("declin*",), ("descart*",), ("nao", "aprov*"),
               ("don't", "approv*"), ("dont", "approv*"), ("do", "not", "approv*"), ("deny",), ("nega",),
               ("discard*",), ("cancel*",), ("abandon*",)),
    "rollback": (("how", "it", "was"), ("before", "the", "last"), ("last", "edit"), ("last", "change"),
                 ("ultima", "mudanca"), ("antes", "da", "ultima"), ("rollback",), ("roll", "back"), ("revert*",),
                 ("desfaz*",), ("desfac*",), ("undo",),
                 ("volta", "a", "versao"), ("volta", "pra", "versao"), ("volta", "para", "versao"),
                 ("voltar", "a", "versao"), ("versao", "anterior"), ("previous", "version"),
                 ("previous", "deploy*"), ("deploy", "anterior"), ("volta", "atras"), ("volta", "como"),
                 ("como", "tava", "antes"), ("como", "estava", "antes"), ("the", "way", "it", "was"),
                 ("put", "it", "back"), ("go", "back", "to", "the")),
    "status": (("ta", "ligado"), ("esta", "ligado"), ("ta", "on"), ("is", "it", "on"), ("bot", "on"), ("online",),
               ("up", "and", "running"), ("status",), ("como", "esta"), ("como", "ta"), ("como", "vai"),
               ("como", "estao"),
               ("how", "is", "it", "going"), ("how", "are", "things"), ("how", "are", "we", "doing"),
               ("how", "is", "sorte"), ("what's", "running"), ("whats", "running"), ("what", "is", "running"),
               ("situacao",), ("health*",), ("rodando",), ("running",), ("overview",), ("resumo",),
               ("state", "of"), ("current", "state"), ("estado", "atual"), ("ta", "ativa"), ("ta", "ativo"),
               ("esta", "ativa"), ("esta", "ativo"), ("is", "active"), ("tudo", "certo"), ("all", "good"),
               ("funcionando",), ("working",), ("alive",), ("vivo",)),
    "pnl": (("pnl",), ("p&l",), ("p", "l"), ("lucro*",), ("prejuizo*",), ("profit",), ("profits",),
            ("ganhei",), ("ganhos",), ("ganhando",), ("perdi",), ("perdendo",), ("posicao",), ("posicoes",),
            ("position",), ("positions",), ("rendimento*",), ("retorno",), ("earnings",), ("earned",),
            ("made",), ("lost",), ("lose",), ("losing",), ("saldo",), ("balance",), ("equity",),
            ("resultado*",), ("performance",), ("desempenho",), ("returns",), ("how", "much", "did"),
            ("quanto", "ganh*"), ("quanto", "perd*"), ("quanto", "eu"), ("making", "money"),
            ("dinheiro",), ("money",), ("open", "trades"), ("trades", "abert*"), ("operacoes", "abert*")),
    "optimise": (("better", "param*"), ("melhores", "param*"), ("better", "settings"), ("find", "better"),
                 ("acha", "melhores"), ("otimiz*",), ("optimi*",), ("tune",), ("tuning",), ("tunar",), ("calibr*",),
                 ("melhores", "parametros"), ("best", "parameters"), ("best", "params"), ("grid", "search"),
                 ("melhor", "configuracao"), ("best", "settings"), ("search",), ("busca",), ("procura", "os"),
                 ("find", "the", "best"), ("acha", "os", "melhores"), ("encontra", "os", "melhores"),
                 ("melhor", "combinacao"), ("best", "combination"), ("backtest", "all")),
    "lessons": (("aprendeu",), ("aprendizado*",), ("licoes",), ("licao",), ("lesson*",), ("learn*",),
                ("aprendeste",), ("aprendemos",), ("taught",), ("ensinou",)),
    "explain": (("o", "que", "*", "faz"), ("o", "que", "o", "*", "faz"), ("what", "does", "*", "do"), ("explica*",),
                ("explique",), ("explain*",), ("como", "funciona"), ("how", "does"),
                ("how", "do", "*", "work"), ("configurac*",), ("settings",), ("config",), ("configs",),
                ("descrev*",), ("describe*",), ("tell", "me", "about"), ("me", "fala"), ("fala", "sobre"),
                ("parametros",), ("parameters",), ("params",), ("what", "does"), ("o", "que", "faz"),
                ("pra", "que", "serve"), ("para", "que", "serve")),
    "help": (("ajuda",), ("help",), ("socorro",), ("o", "que", "voce", "faz"), ("o", "que", "vc", "faz"),
             ("o", "q", "vc"), ("o", "que", "vc"), ("o", "que", "voce"), ("what", "can", "you"),
             ("what", "can", "i"), ("can", "you", "do"), ("comandos",), ("commands",), ("como", "usa"),
             ("como", "uso"), ("how", "do", "i", "use"), ("what", "do", "you", "do"), ("sabe", "fazer"),
             ("pode", "fazer"), ("consegue", "fazer"), ("how", "to", "use"), ("como", "funciona", "o", "bot"),
             ("manual",), ("tutorial",)),
}  # fmt: skip
#: Words that only ask about something when the message also names a strategy, parameter or stage.
EXPLAIN_WEAK: tuple[tuple[str, ...], ...] = (
    ("what", "are"), ("what's",), ("whats",), ("what", "is"), ("o", "que", "e"), ("quais",), ("qual",),
    ("mostra*",), ("mostre",), ("show*",), ("current*",), ("atual",), ("atuais",), ("quanto", "ta"),
    ("quanto", "esta"), ("how", "is"), ("como", "e"), ("valor*",), ("value*",), ("ver",), ("see",), ("list*",),
    ("lista*",),
)  # fmt: skip
#: A change asked for without saying what: one question back.
VAGUE_CHANGE: tuple[tuple[str, ...], ...] = (
    ("agressiv*",), ("aggressive*",), ("conservador*",), ("conservative*",), ("arriscad*",), ("risky",),
    ("riskier",), ("safer",), ("seguro",), ("segura",), ("defensiv*",), ("defensive",), ("melhor*",),
    ("better",), ("improve*",), ("melhora*",), ("tweak*",), ("mexe",), ("mexer",),
)  # fmt: skip
#: A complaint or a "fix it" with nothing to act on: one question back.
VAGUE: tuple[tuple[str, ...], ...] = (
    ("arruma*",), ("conserta*",), ("fix", "it"), ("fix", "this"), ("fix", "that"), ("resolve", "isso"),
    ("da", "um", "jeito"), ("faz", "alguma", "coisa"), ("do", "something"), ("sort", "it", "out"),
)  # fmt: skip

#: A request for new logic or a new strategy: the coder role's work, not a parameter.
CODE: tuple[tuple[str, ...], ...] = (
    ("so", "compra*"), ("so", "vend*"), ("somente", "compr*"), ("somente", "vend*"), ("apenas", "compr*"),
    ("apenas", "vend*"), ("only", "buy"), ("only", "sell"), ("only", "enter"), ("only", "trade"),
    ("so", "entra"), ("so", "opera"), ("nova", "estrategia"), ("estrategia", "nova"), ("new", "strategy"),
    ("cria", "uma"), ("criar", "uma"), ("crie", "uma"), ("create", "a"), ("add", "a", "filter"),
    ("adiciona", "um", "filtro"), ("adicione", "um", "filtro"), ("add", "a", "condition"),
    ("adiciona", "uma", "condicao"), ("add", "a", "rule"), ("adiciona", "uma", "regra"), ("quando", "o", "rsi"),
    ("when", "rsi"), ("when", "the", "rsi"), ("se", "o", "rsi"), ("if", "rsi"), ("if", "the", "rsi"),
    ("nao", "compra", "quando"), ("don't", "buy"), ("dont", "buy"), ("never", "buy"), ("nunca", "compr*"),
    ("exit", "when"), ("sai", "quando"), ("sair", "quando"), ("filter", "out"), ("filtra*",), ("write", "a"),
    ("escreve", "uma"), ("implement*",), ("skip", "trades"), ("weekend*",), ("fim", "de", "semana"),
    ("fins", "de", "semana"), ("avoid", "trading"), ("don't", "trade"), ("dont", "trade"), ("nao", "opera*"),
    ("compr*", "quando"), ("compr*", "qdo"), ("vend*", "quando"), ("vend*", "qdo"), ("buy", "when"),
    ("sell", "when"), ("buy", "if"), ("sell", "if"), ("buy", "only"), ("sell", "only"), ("entra", "quando"),
    ("enter", "when"), ("close", "when"), ("fecha", "quando"), ("fechar", "quando"), ("crossover", "of"),
    ("cruzamento", "de", "ema"), ("usa", "o", "macd"), ("use", "macd"), ("add", "macd"), ("add", "an", "ema"),
    ("adiciona", "o", "macd"), ("muda", "a", "logica"), ("change", "the", "logic"), ("logica",), ("logic",),
)  # fmt: skip
#: Indicators and trading terms no strategy declares as a parameter: code when asked for alone,
#: an unknown parameter when they qualify a parameter's name ("trailing stop", "macd period").
FOREIGN = ("macd", "ema", "vwap", "atr", "adx", "obv", "estocastico", "stochastic", "ichimoku", "fibonacci",
           "trailing", "movel", "signal", "sinal", "leverage", "alavancagem", "lote", "lot", "size", "tamanho",
           "spread", "slippage", "taxa", "fee", "fees", "timeframe", "cooldown", "breakeven", "dinamico",
           "dynamic", "kelly", "martingale", "grid", "hedge", "sma200", "ema200")  # fmt: skip

#: Secrets, shells and instructions aimed at the model: refused, whatever else the message says.
HOSTILE: tuple[tuple[str, ...], ...] = (
    ("esquec*", "*", "regras"), ("forget", "your"), ("sem", "aprovacao"), ("without", "approval"),
    ("qualquer", "mudanca"), ("any", "change"), ("delet*",), ("apag*",), ("wipe*",), ("erase*",),
    ("ignor*",), ("system", "prompt"), ("prompt", "do", "sistema"), ("token*",), ("senha*",), ("password*",),
    ("api", "key*"), ("apikey*",), ("chave*", "da", "api"), ("chave*", "api"), ("env",), ("secret*",),
    ("segredo*",), ("credenciais",), ("credentials",), ("rm",), ("sudo",), ("curl",), ("wget",), ("bash",),
    ("shell",), ("os", "system"), ("eval",), ("exec",), ("subprocess",), ("import", "os"), ("etc", "passwd"),
    ("from", "now", "on"), ("a", "partir", "de", "agora"), ("daqui", "pra", "frente"), ("always", "approv*"),
    ("sempre", "aprov*"), ("aprov*", "tudo"), ("approv*", "everything"), ("approv*", "all"),
    ("aprov*", "todas"), ("aprov*", "todos"), ("auto", "approv*"), ("auto", "aprov*"), ("guardian",),
    ("skip", "validation"), ("pula", "a", "validacao"), ("sem", "validacao"), ("without", "validation"),
    ("live", "trading"), ("modo", "real"), ("dinheiro", "real"), ("real", "money"), ("operator",),
    ("operador",), ("admin",), ("jailbreak",), ("dan",), ("developer", "mode"), ("modo", "desenvolvedor"),
)  # fmt: skip
