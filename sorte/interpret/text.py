"""Text as the interpreter compares it: lower case, accents off, words split; and the everyday
words of either language (never typos of a parameter's name, and what tells the two apart:
``sorte.interpret.replies.detect``)."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?%?|[%+=-]")

#: Words that say a message is Portuguese or English (accents off). Shared words ("status",
#: "stop", "momentum") count for neither.
PORTUGUESE = frozenset(
    """o os da dos das de na nos nas um uma para pra pro pros que nao sim e ou com sem em por mais menos
    muito pouco quanto quando qual quais como esta ta estao tá sao ser ter tem aumenta aumentar aumente
    sobe subir suba diminui diminuir diminua reduz reduzir reduza baixa baixar baixe abaixa muda mudar
    mude altera alterar coloca colocar coloque bota botar poe por deixa deixar deixe define definir
    ajusta ajustar liga ligar desliga desligar ativa ativar desativa desativar dobra dobrar metade
    estrategia estrategias parametro parametros estagio cascata confianca minima minimo peso limiar
    lucro prejuizo ganhei perdi quanto posicoes aprova aprovo aprovar rejeita rejeito rejeitar recusa
    cancela reverte volta desfaz ajuda otimiza otimizar explica explique mostra mostre aprendeu voce vc
    oq isso essa esse agora tudo todas todos rapida lenta janela periodo sobrevendido sobrecomprado
    largura desvios barras segundos pontos cento porcento favor pfv pf obrigado valeu ai la ne tipo
    entao tecnico sentimento analise risco validacao rompimento reversao media medias meu minha quero
    queria gostaria pode poderia faz fazer faca coisa nova novo cria criar compra vende somente apenas
    quem ganhou ganhei jogo ontem hoje amanha semana mes ano conteudo arquivo manda mande qdo vc vcs tb
    tbm blz pq porque dia agora depois antes ainda tambem sempre nunca mesmo aqui ali ta tao sobre ate
    pelo pela pelos num numa dele dela isso isto aquilo algo nada cade""".split()  # noqa: SIM905
)
ENGLISH = frozenset(
    """the of to for and or with without in on at by is are was be it its this that these those what which
    how much many when please pls plz can could would should i me my you your we our raise increase bump
    lower decrease reduce cut drop set make change put update turn switch enable disable activate
    deactivate double halve half tighten widen loosen shorten lengthen strategy strategies parameter
    parameters stage cascade confidence minimum weight threshold profit profits loss losses positions
    position approve approved reject rejected decline revert undo back help optimise optimize tune
    explain show tell learn learned learnt lessons fast slow window period oversold overbought width
    deviations bars seconds points percent new create only buy sell if up down off from now everything
    all going doing running settings current currently right thanks hey give get let lets it's whats
    what's don't does did""".split()  # noqa: SIM905
)


#: Everyday words of either language: never read as a typo of a parameter's name.
COMMON_WORDS = PORTUGUESE | ENGLISH


def normalise(text: str) -> str:
    """Lower case, accents and curly quotes off, runs of spaces folded."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"\s*(->|=>|→|:=)\s*", " = ", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """The normalised message as words; numbers keep their decimal mark and a trailing %."""
    return _WORD.findall(normalise(text))
