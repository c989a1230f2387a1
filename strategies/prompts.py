"""Prompt templates of the LLM cascade stages.

Each template is formatted with the bar's market summary: {symbol}, {side} (the side the
earlier stages proposed), {close}, {ret_1}, {ret_10}, {ret_50} (returns in %), {rsi},
{macd_hist}, {bb_pct} (Bollinger %b), {vol_ratio} (volume / its 20-bar mean), {volatility}
(% per bar) and {previous} (earlier stages' scores and reasons). The answer must be JSON
with "score" (0..1: how strongly this stage supports trading the side), "side"
(BUY, SELL or HOLD) and a short "reason"; the final stage also gives "hold_seconds".

This file is data: the agent edits these literals in place.
"""

SYSTEM = (
    "You are one stage of a trading decision cascade. Judge only what you are asked. "
    "Answer with a single JSON object and nothing else."
)

PROMPTS = {
    "sentiment": (
        "Market mood check for {symbol}. Last close {close}. Returns: 1 bar {ret_1}%, 10 bars {ret_10}%, "
        "50 bars {ret_50}%. Volume is {vol_ratio}x its average. Is the mood supportive of a {side}? "
        'Reply as {{"score": 0..1, "side": "BUY|SELL|HOLD", "reason": "..."}}.'
    ),
    "technical": (
        "Technical analysis of {symbol} for a proposed {side}. RSI(14) {rsi}, MACD histogram {macd_hist}, "
        "Bollinger %b {bb_pct}, volatility {volatility}% per bar, returns 10 bars {ret_10}%. "
        "Score how well MACD, RSI and Bollinger support the {side}. "
        'Reply as {{"score": 0..1, "side": "BUY|SELL|HOLD", "reason": "..."}}.'
    ),
    "risk": (
        "Risk review of a {side} on {symbol}. Volatility {volatility}% per bar, 50-bar return {ret_50}%, "
        "RSI {rsi}. Think about risk/reward, drawdown and whether the move is stretched. "
        'Reply as {{"score": 0..1 (1 = acceptable risk), "side": "BUY|SELL|HOLD", "reason": "..."}}.'
    ),
    "validation": (
        "Data validation for {symbol}: close {close}, 1-bar return {ret_1}%, volume ratio {vol_ratio}. "
        "Do these numbers look like sane market data (no spikes, no stale prices)? "
        'Reply as {{"score": 0..1 (1 = data looks valid), "side": "BUY|SELL|HOLD", "reason": "..."}}.'
    ),
    "final": (
        "Final decision on a {side} for {symbol}. Earlier stages said: {previous}. "
        "Give the overall confidence, and how many seconds (5 to 90) the position should stay open at least. "
        'Reply as {{"score": 0..1, "side": "BUY|SELL|HOLD", "reason": "...", "hold_seconds": 5..90}}.'
    ),
}
