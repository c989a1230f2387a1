"""The pair selector: which of an exchange's symbols to trade, as freqtrade's pairlists choose them.

``select_pairs`` is a pure function of ccxt's unified tickers (``fetch_tickers``: symbol, last,
bid, ask, quoteVolume, high, low, percentage) and ``market.pairs``. A ticker goes through the
filters in this order, and the first that refuses it is recorded with its reason (a malformed
ticker is refused with a reason too, never a crash):

1. ``ticker``: no usable symbol, price, volume, high/low (or bid/ask where the spread is checked);
2. ``market``: not a listed, active spot market (when the exchange's markets are given);
3. ``quote``: quoted in another currency than ``quote``;
4. ``blacklist``: matches one of the glob patterns (``BNB/*``, ``*DOWN/*``), case-insensitive;
5. ``min_price``, ``max_spread``, ``min_quote_volume``: the last price, the bid/ask spread in %
   of the ask, the 24 h volume in the quote currency (``baseVolume × last`` where the exchange
   gives no quote volume);
6. ``volatility``: the high/low range in % of the low, from the ticker's 24 h high and low, or
   over the last ``volatility_lookback_bars`` cached candles, inside [min, max].

The pairs left are *eligible*. Each gets a score in [0, 1]: the weighted mean of its percentile
ranks among the eligible ones by each key of ``sort_keys`` (quote volume, volatility, absolute
24 h change), so that no key's scale drowns the others. Ties go to the larger volume, then to
the symbol in alphabetical order. Then, best first, ``min_history`` checks how many candles
exist (a callable: the candle cache's count, or REST), only as far down the ranking as needed to
fill ``number_assets``; the eligible pairs below those are refused by ``rank``.

``PairSelector`` fetches the tickers through ccxt with the market service's timeouts and
retries, keeps the last selection with its time, says when a refresh is due and saves each
selection to ``<data_dir>/market/pairs.json`` for ``sorte pairs``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import math
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import structlog
from pydantic import BaseModel, Field, ValidationError

from sorte.config import PairsSettings, Settings
from sorte.errors import ConfigError, DataError, SorteError
from sorte.paths import pairs_file
from sorte.runtime.ccxt_feed import ExchangeCalls, ExchangeError, create_exchange, parse_timeframe
from sorte.runtime.clock import Clock, WallClock

log = structlog.get_logger("sorte.market.pairs")

Filter = Literal[
    "ticker", "market", "quote", "blacklist", "min_price", "max_spread", "min_quote_volume", "volatility",
    "min_history", "rank",
]  # fmt: skip
FILTERS: tuple[Filter, ...] = get_args(Filter)
HistoryCount = Callable[[str], int | Awaitable[int]]  # symbol -> closed candles known (cache count or REST)
CandleWindow = Callable[[str, int], Sequence[Sequence[float]]]  # (symbol, n) -> last n [open_ms, o, h, l, c, v]


class SelectedPair(BaseModel):
    symbol: str
    rank: int = Field(description="1 is the best")
    score: float = Field(description="Weighted mean of the percentile ranks by the sort keys, 0 to 1")
    quote_volume: float = Field(description="24 h volume in the quote currency")
    volatility_pct: float = Field(description="High/low range in % of the low (24 h, or the candle lookback)")
    price: float
    spread_pct: float | None = Field(None, description="(ask - bid) / ask in %, None when the ticker has no bid/ask")
    change_pct: float | None = Field(None, description="24 h change in %")
    history_bars: int | None = Field(None, description="Candles known when min_history_bars is checked")
    why: str


class RejectedPair(BaseModel):
    symbol: str
    filter: Filter
    reason: str


class PairSelection(BaseModel):
    source: str = Field("", description="The exchange id")
    quote: str
    timeframe: str | None = Field(None, description="Of the candles behind min_history_bars and the candle volatility")
    at: float = Field(description="Wall time (epoch s) of the selection")
    took_s: float = Field(0.0, description="Seconds spent ranking (fetching not included)")
    settings: PairsSettings
    tickers: int = Field(description="Tickers looked at")
    eligible: int = Field(description="Tickers that passed every ticker filter")
    selected: list[SelectedPair]
    rejected: list[RejectedPair]

    @property
    def symbols(self) -> list[str]:
        return [p.symbol for p in self.selected]

    def rejected_by(self) -> dict[str, int]:
        """How many tickers each filter refused, in the filters' order."""
        counts = Counter(r.filter for r in self.rejected)
        return {f: counts[f] for f in FILTERS if counts[f]}


@dataclass(slots=True)
class _Candidate:
    symbol: str
    price: float
    quote_volume: float
    volume_derived: bool
    spread_pct: float | None
    change_pct: float | None
    volatility_pct: float
    score: float = 0.0
    percentiles: dict[str, float] | None = None


class _Refused(Exception):
    def __init__(self, filter: Filter, reason: str) -> None:
        self.filter, self.reason = filter, reason


def _number(value: Any) -> float | None:
    """A finite float, or None (ccxt gives None, strings, NaN for what an exchange left out)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def human(value: float) -> str:
    """12.3M, 450k, 1.2B: volumes as a person reads them."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def filters_text(s: PairsSettings) -> str:
    """The filters of ``s`` in one line, as ``sorte pairs`` prints them."""
    volatility = "24 h" if not s.volatility_lookback_bars else f"last {s.volatility_lookback_bars} candles"
    upper = "" if s.max_volatility_pct is None else f"–{s.max_volatility_pct:g}"
    parts = [
        f"quote {s.quote}",
        f"price ≥ {s.min_price:g}" if s.min_price else "",
        f"spread ≤ {s.max_spread_pct:g} %" if s.max_spread_pct is not None else "",
        f"volume ≥ {human(s.min_quote_volume)} {s.quote}",
        f"range {s.min_volatility_pct:g}{upper} % ({volatility})",
        f"≥ {s.min_history_bars} candles" if s.min_history_bars else "",
        f"blacklist {', '.join(s.blacklist)}" if s.blacklist else "",
        f"top {s.number_assets}",
    ]
    return "; ".join(p for p in parts if p)


def _blacklist(patterns: Sequence[str]) -> Callable[[str], str | None]:
    """The first pattern a symbol matches (glob, case-insensitive), or None."""
    if not patterns:
        return lambda symbol: None
    combined = re.compile("|".join(fnmatch.translate(p.upper()) for p in patterns))
    each = [(p, re.compile(fnmatch.translate(p.upper()))) for p in patterns]

    def match(symbol: str) -> str | None:
        upper = symbol.upper()
        if combined.match(upper) is None:
            return None
        return next(p for p, rx in each if rx.match(upper))

    return match


def _percentiles(values: list[float]) -> list[float]:
    """Each value's percentile rank among ``values`` in [0, 1]; equal values share their mean rank."""
    n = len(values)
    if n == 1:
        return [1.0]
    order = sorted(range(n), key=values.__getitem__)
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = (i + j) / 2 / (n - 1)
        for k in range(i, j + 1):
            ranks[order[k]] = mean
        i = j + 1
    return ranks


class Ranking:
    """The tickers filtered and scored; ``min_history`` is then checked best first, in batches of
    as many pairs as are still needed (``wanted`` / ``admit``), so a REST check costs a handful of
    requests, not one per ticker."""

    def __init__(
        self,
        tickers: Mapping[str, Any] | Iterable[Any],
        settings: PairsSettings,
        *,
        candles: CandleWindow | None = None,
        markets: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        if settings.volatility_lookback_bars and candles is None:
            raise ConfigError(
                "market.pairs.volatility_lookback_bars needs the candle cache: set it to 0 for the ticker's 24 h range"
            )
        self.candles, self.markets = candles, markets
        self._listed = _blacklist(settings.blacklist)
        self.rejected: list[RejectedPair] = []
        self.selected: list[SelectedPair] = []
        self.tickers = 0
        candidates = []
        items = tickers.items() if isinstance(tickers, Mapping) else ((None, t) for t in tickers)
        for key, ticker in items:
            self.tickers += 1
            symbol = ticker.get("symbol") if isinstance(ticker, Mapping) else None
            if not isinstance(ticker, Mapping) or not isinstance(symbol, str) or not symbol:
                what = "no symbol in the ticker" if isinstance(ticker, Mapping) else f"not a ticker: {ticker!r:.40}"
                symbol = key if isinstance(key, str) and key else "?"
                self.rejected.append(RejectedPair(symbol=symbol, filter="ticker", reason=what))
                continue
            try:
                candidates.append(self._candidate(symbol, ticker))
            except _Refused as refused:
                self.rejected.append(RejectedPair(symbol=symbol, filter=refused.filter, reason=refused.reason))
        self.ranked = self._score(candidates)
        self._next = 0

    # -- the ticker filters ------------------------------------------------------------------
    def _candidate(self, symbol: str, t: Mapping[str, Any]) -> _Candidate:
        s = self.settings
        base, _, rest = symbol.partition("/")
        quote, _, settle = rest.partition(":")
        if not base or not quote:
            raise _Refused("ticker", f"symbol {symbol!r} is not BASE/QUOTE")
        if settle:
            raise _Refused("market", f"a derivative ({symbol}), not a spot market")
        if self.markets is not None:
            market = self.markets.get(symbol)
            if not isinstance(market, Mapping) or market.get("spot") is False:
                raise _Refused("market", "not a listed spot market")
            if market.get("active") is False:
                raise _Refused("market", "the market is not trading (inactive)")
        if quote.upper() != s.quote:
            raise _Refused("quote", f"quoted in {quote}, not {s.quote}")
        pattern = self._listed(symbol)
        if pattern is not None:
            raise _Refused("blacklist", f"matches the blacklist pattern {pattern!r}")
        price = _number(t.get("last"))
        if price is None:
            price = _number(t.get("close"))
        if price is None or price <= 0:
            raise _Refused("ticker", f"no last price (last={t.get('last')!r})")
        if price < s.min_price:
            raise _Refused("min_price", f"price {price:.6g} < {s.min_price:g}")
        bid, ask = _number(t.get("bid")), _number(t.get("ask"))
        spread = (ask - bid) / ask * 100 if bid is not None and ask is not None and 0 < bid <= ask else None
        if s.max_spread_pct is not None:
            if spread is None:
                raise _Refused("ticker", f"no usable bid/ask for the spread filter (bid={bid!r}, ask={ask!r})")
            if spread > s.max_spread_pct:
                raise _Refused("max_spread", f"spread {spread:.3g} % > {s.max_spread_pct:g} %")
        volume, derived = _number(t.get("quoteVolume")), False
        if volume is None:
            base_volume = _number(t.get("baseVolume"))
            if base_volume is None:
                raise _Refused("ticker", "no 24 h volume (quoteVolume and baseVolume missing)")
            volume, derived = base_volume * price, True
        if volume < 0:
            raise _Refused("ticker", f"negative 24 h volume {volume:g}")
        if volume < s.min_quote_volume:
            raise _Refused("min_quote_volume", f"24 h volume {human(volume)} {s.quote} < {human(s.min_quote_volume)}")
        change = _number(t.get("percentage"))
        if change is None and s.sort_keys.get("change", 0) > 0:
            raise _Refused("ticker", "no 24 h change (percentage), which the score weighs")
        volatility = self._volatility(symbol, t)
        if volatility < s.min_volatility_pct:
            raise _Refused("volatility", f"{self._range_name()} {volatility:.3g} % < {s.min_volatility_pct:g} %")
        if s.max_volatility_pct is not None and volatility > s.max_volatility_pct:
            raise _Refused("volatility", f"{self._range_name()} {volatility:.3g} % > {s.max_volatility_pct:g} %")
        return _Candidate(symbol, price, volume, derived, spread, change, volatility)

    def _range_name(self) -> str:
        n = self.settings.volatility_lookback_bars
        return f"range of the last {n} candles" if n else "24 h range"

    def _volatility(self, symbol: str, t: Mapping[str, Any]) -> float:
        n = self.settings.volatility_lookback_bars
        if n:
            assert self.candles is not None
            rows = self.candles(symbol, n)
            if len(rows) < n:
                raise _Refused("volatility", f"{len(rows)} cached candles, the volatility lookback needs {n}")
            high, low = max(float(r[2]) for r in rows), min(float(r[3]) for r in rows)
        else:
            h, lo = _number(t.get("high")), _number(t.get("low"))
            if h is None or lo is None:
                raise _Refused("ticker", "no 24 h high/low for the volatility")
            high, low = h, lo
        if not low > 0 or high < low:
            raise _Refused("ticker", f"inconsistent high/low ({high:g} / {low:g})")
        return (high - low) / low * 100

    # -- the score -----------------------------------------------------------------------------
    def _score(self, candidates: list[_Candidate]) -> list[_Candidate]:
        if not candidates:
            return []
        weights = {k: w for k, w in self.settings.sort_keys.items() if w > 0}
        total = sum(weights.values())
        getters: dict[str, Callable[[_Candidate], float]] = {
            "quote_volume": lambda c: c.quote_volume,
            "volatility": lambda c: c.volatility_pct,
            "change": lambda c: abs(c.change_pct or 0.0),
        }
        ranks = {k: _percentiles([getters[k](c) for c in candidates]) for k in weights}
        for i, c in enumerate(candidates):
            c.percentiles = {k: ranks[k][i] for k in weights}
            c.score = sum(w * ranks[k][i] for k, w in weights.items()) / total
        return sorted(candidates, key=lambda c: (-c.score, -c.quote_volume, c.symbol))

    # -- min_history, best first ---------------------------------------------------------------
    def wanted(self) -> list[str]:
        """The next pairs to check, best first: as many as are still needed (none when done)."""
        needed = self.settings.number_assets - len(self.selected)
        if needed <= 0 or self._next >= len(self.ranked):
            return []
        return [c.symbol for c in self.ranked[self._next : self._next + needed]]

    def admit(self, counts: Mapping[str, int | BaseException] | None = None) -> None:
        """Take the pairs ``wanted`` returned, with their candle counts (or the error of the
        count) where ``min_history_bars`` is set."""
        for symbol in self.wanted():
            c = self.ranked[self._next]
            assert c.symbol == symbol
            self._next += 1
            bars = None
            if self.settings.min_history_bars:
                count = (counts or {}).get(symbol)
                if isinstance(count, BaseException) or count is None:
                    reason = f"candle history unknown: {count}" if count is not None else "candle history unknown"
                    self.rejected.append(RejectedPair(symbol=symbol, filter="min_history", reason=reason))
                    continue
                bars = int(count)
                if bars < self.settings.min_history_bars:
                    reason = f"{bars} candles known, needs {self.settings.min_history_bars}"
                    self.rejected.append(RejectedPair(symbol=symbol, filter="min_history", reason=reason))
                    continue
            self.selected.append(self._selected(c, len(self.selected) + 1, bars))

    def _selected(self, c: _Candidate, rank: int, bars: int | None) -> SelectedPair:
        s, others = self.settings, len(self.ranked) - 1
        parts = []
        for key, pct in (c.percentiles or {}).items():
            derived = " (base volume × last)" if c.volume_derived else ""
            value = {
                "quote_volume": f"volume {human(c.quote_volume)} {s.quote}{derived}",
                "volatility": f"{self._range_name()} {c.volatility_pct:.1f} %",
                "change": f"|24 h change| {abs(c.change_pct or 0):.1f} %",
            }[key]
            parts.append(f"{value} beats {pct * 100:.0f} % of the other {others}" if others else value)
        if s.sort_keys.get("volatility", 0) <= 0:
            parts.append(f"{self._range_name()} {c.volatility_pct:.1f} %")
        if c.spread_pct is not None:
            parts.append(f"spread {c.spread_pct:.2g} %")
        if bars is not None:
            parts.append(f"{bars} candles")
        alone = "" if others else " (the only pair that passed the filters)"
        return SelectedPair(
            symbol=c.symbol,
            rank=rank,
            score=round(c.score, 6),
            quote_volume=c.quote_volume,
            volatility_pct=c.volatility_pct,
            price=c.price,
            spread_pct=c.spread_pct,
            change_pct=c.change_pct,
            history_bars=bars,
            why=f"score {c.score:.2f}{alone}: " + ", ".join(parts),
        )

    def result(
        self, *, at: float, source: str = "", timeframe: str | None = None, took_s: float = 0.0
    ) -> PairSelection:
        eligible = len(self.ranked)
        for i in range(self._next, eligible):
            c = self.ranked[i]
            taken = self.settings.number_assets
            reason = f"eligible #{i + 1} of {eligible} (score {c.score:.2f}), below the {taken} taken"
            self.rejected.append(RejectedPair(symbol=c.symbol, filter="rank", reason=reason))
        self._next = eligible
        return PairSelection(
            source=source,
            quote=self.settings.quote,
            timeframe=timeframe,
            at=at,
            took_s=took_s,
            settings=self.settings,
            tickers=self.tickers,
            eligible=eligible,
            selected=self.selected,
            rejected=self.rejected,
        )


def select_pairs(
    tickers: Mapping[str, Any] | Iterable[Any],
    settings: PairsSettings,
    *,
    history: Callable[[str], int] | None = None,
    candles: CandleWindow | None = None,
    markets: Mapping[str, Any] | None = None,
    at: float | None = None,
    source: str = "",
    timeframe: str | None = None,
) -> PairSelection:
    """Rank ``tickers`` (ccxt's ``fetch_tickers`` answer, or a list of tickers) under ``settings``.
    ``history(symbol)`` counts the candles known (``min_history_bars``), ``candles(symbol, n)``
    gives the last ``n`` (``volatility_lookback_bars``), ``markets`` are ccxt's markets."""
    started = time.perf_counter()
    if settings.min_history_bars and history is None:
        raise ConfigError("market.pairs.min_history_bars needs a candle count (the candle cache or REST)")
    ranking = Ranking(tickers, settings, candles=candles, markets=markets)
    while wanted := ranking.wanted():
        counts: dict[str, int | BaseException] | None = None
        if settings.min_history_bars:
            assert history is not None
            counts = {}
            for symbol in wanted:
                try:
                    counts[symbol] = history(symbol)
                except ExchangeError:  # the exchange is down: no selection rather than an empty one
                    raise
                except SorteError as exc:  # this symbol's history cannot be had (unknown to the exchange)
                    counts[symbol] = exc
        ranking.admit(counts)
    took = time.perf_counter() - started
    return ranking.result(at=time.time() if at is None else at, source=source, timeframe=timeframe, took_s=took)


# -- the saved selection ---------------------------------------------------------------------
def write_selection(path: Path, selection: PairSelection) -> None:
    """Replace the saved selection at once: a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(selection.model_dump_json(indent=1))
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"pair selection cannot be saved to {path}: {exc}") from None


def read_selection(path: Path) -> PairSelection | None:
    """The saved selection, None when there is none; a DataError when it cannot be read."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataError(f"pair selection {path} cannot be read: {exc}") from None
    try:
        return PairSelection.model_validate_json(text)
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        hint = "`sorte pairs --refresh` writes a new one"
        raise DataError(f"pair selection {path} is malformed ({first}): {hint}") from None


def saved_selection(path: Path, source: str) -> PairSelection | None:
    """The selection saved for ``source``; None when there is none or it cannot be read (the
    next refresh writes a new one)."""
    try:
        saved = read_selection(path)
    except DataError as exc:
        log.warning("pairs_saved_unreadable", reason=str(exc))
        return None
    return saved if saved is not None and saved.source == source else None


# -- the selector ----------------------------------------------------------------------------
class PairSelector:
    """Fetches the exchange's tickers, selects pairs, keeps and saves the selection.

    ``history`` counts a symbol's candles for ``min_history_bars`` (``CandleCache.count`` bound
    to the timeframe, or an async REST count); ``candles(symbol, n)`` gives the cached candles
    for ``volatility_lookback_bars``. The last saved selection is taken over at start when it
    was made on the same exchange with the same settings, so a restart does not refresh early."""

    def __init__(
        self,
        settings: Settings,
        *,
        history: HistoryCount | Literal["rest"] | None = None,
        candles: CandleWindow | None = None,
        clock: Clock | None = None,
        path: Path | None = None,
    ) -> None:
        self.pairs, ex, market = settings.market.pairs, settings.exchange, settings.market
        if self.pairs.min_history_bars and history is None:
            raise ConfigError("market.pairs.min_history_bars needs a candle count (the candle cache or REST)")
        if self.pairs.volatility_lookback_bars and candles is None:
            raise ConfigError("market.pairs.volatility_lookback_bars needs the candle cache")
        self.history: HistoryCount | None = self.rest_history if history == "rest" else history
        self.candles = candles
        self.source, self.timeframe = ex.name, ex.timeframe
        self.interval_ms = int(parse_timeframe(ex.timeframe) * 1000)
        self.clock = clock or WallClock()
        self.path = pairs_file(settings.data_dir) if path is None else path
        self.exchange = create_exchange(ex, asynchronous=True, timeout_s=market.request_timeout_s)
        self.where = f"{ex.name} at {ex.base_url}" if ex.base_url else ex.name
        self.calls = ExchangeCalls(
            self.exchange,
            ex.name,
            self.where,
            timeout_s=market.request_timeout_s,
            attempts=market.request_attempts,
            backoff_s=market.reconnect_backoff_s,
        )
        saved = saved_selection(self.path, self.source)
        self.last: PairSelection | None = saved if saved is not None and saved.settings == self.pairs else None

    @property
    def at(self) -> float | None:
        """When the last selection was made (epoch s), None before the first."""
        return None if self.last is None else self.last.at

    def due(self, now: float | None = None) -> bool:
        """Whether a refresh is due: no selection yet, or the last one is ``refresh_s`` old."""
        if self.last is None:
            return True
        return (self.clock.now() if now is None else now) - self.last.at >= self.pairs.refresh_s

    def next_refresh(self) -> float:
        """When the next refresh is due (epoch s): now if there is no selection yet."""
        return self.clock.now() if self.last is None else self.last.at + self.pairs.refresh_s

    async def refresh(self) -> PairSelection:
        """Fetch the tickers now, select, save and keep the selection."""
        markets = await self.calls.call("loading markets", self.exchange.load_markets)
        if not isinstance(markets, dict) or not markets:
            raise ExchangeError(f"malformed answer from {self.where} while loading markets: no markets listed")
        tickers = await self.calls.call("tickers", self.exchange.fetch_tickers)
        if not isinstance(tickers, dict):
            raise ExchangeError(f"malformed answer from {self.where} for tickers: expected a ticker per symbol")
        started = time.perf_counter()
        ranking = Ranking(tickers, self.pairs, candles=self.candles, markets=markets)
        while wanted := ranking.wanted():
            ranking.admit(await self._counts(wanted) if self.pairs.min_history_bars else None)
        took = time.perf_counter() - started
        selection = ranking.result(at=self.clock.now(), source=self.source, timeframe=self.timeframe, took_s=took)
        self.last = selection  # kept even when it cannot be saved
        write_selection(self.path, selection)
        log.info(
            "pairs_selected",
            source=self.source,
            pairs=selection.symbols,
            tickers=selection.tickers,
            eligible=selection.eligible,
            rejected=selection.rejected_by(),
        )
        return selection

    async def refresh_if_due(self) -> PairSelection | None:
        """A new selection when one is due, else None (the last one stands)."""
        return await self.refresh() if self.due() else None

    async def _counts(self, symbols: list[str]) -> dict[str, int | BaseException]:
        assert self.history is not None
        history = self.history

        async def one(symbol: str) -> int:
            value = history(symbol)
            return int(await value) if inspect.isawaitable(value) else int(value)

        answers = await asyncio.gather(*(one(s) for s in symbols), return_exceptions=True)
        counts: dict[str, int | BaseException] = {}
        for symbol, answer in zip(symbols, answers, strict=True):
            if isinstance(answer, BaseException) and (
                isinstance(answer, ExchangeError) or not isinstance(answer, SorteError)
            ):
                raise answer  # the exchange is down (or a bug): no selection rather than an empty one
            counts[symbol] = answer
        return counts

    async def rest_history(self, symbol: str) -> int:
        """How many candles of the timeframe the exchange has for ``symbol``, up to
        ``min_history_bars``, in one request: the first candle at or after that many intervals
        ago tells whether the history reaches back so far, or when it starts."""
        wanted = self.pairs.min_history_bars
        now_ms = int(self.clock.now() * 1000)
        since = now_ms - wanted * self.interval_ms
        rows = await self.calls.candles(symbol, self.timeframe, since, 1)
        if not rows:
            return 0
        first = int(rows[0][0])
        return wanted if first <= since + self.interval_ms else max(0, (now_ms - first) // self.interval_ms)

    async def close(self) -> None:
        await self.exchange.close()
