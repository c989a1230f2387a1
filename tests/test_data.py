from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sorte.errors import DataError
from sorte.runtime import demo
from sorte.runtime.data import gap_limit, load_bars, to_ohlcv, validate_bars


def write(tmp_path, frame: pd.DataFrame, name="bars.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def good(goog) -> pd.DataFrame:
    return goog.head(60).reset_index()


def test_loads_csv_and_parquet_identically(tmp_path, good):
    csv = write(tmp_path, good)
    pq = tmp_path / "bars.parquet"
    good.to_parquet(pq)
    a, b = load_bars(csv), load_bars(pq)
    pd.testing.assert_frame_equal(a, b, check_freq=False)
    assert list(a.columns) == ["open", "high", "low", "close", "volume"]
    assert str(a.index.tz) == "UTC"


def test_capitalised_columns_and_date_column(tmp_path, goog_csv):
    frame = load_bars(goog_csv)
    assert len(frame) == 2148


def test_volume_is_optional(tmp_path, good):
    frame = load_bars(write(tmp_path, good.drop(columns=["volume"])))
    assert (frame["volume"] == 0).all()


def test_epoch_millisecond_timestamps(tmp_path, good):
    good = good.assign(time=good["time"].astype("int64") // 10**6)
    assert load_bars(write(tmp_path, good)).index[0] == pd.Timestamp("2004-08-19", tz="UTC")


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda f: f.drop(columns=["close"]), "missing column"),
        (lambda f: f.drop(columns=["time"]), "no time column"),
        (lambda f: f.assign(close=f["close"].where(f.index != 5)), "NaN"),
        (lambda f: f.iloc[[0, 2, 1, *range(3, len(f))]], "not in time order"),
        (lambda f: pd.concat([f.iloc[:10], f.iloc[9:]]), "duplicate timestamp"),
        (lambda f: f.assign(time=f["time"].where(f.index < 30, f["time"] + pd.Timedelta(days=2000))), "gap of"),
        (lambda f: f.assign(low=f["low"].where(f.index != 4, -1.0)), "non-positive"),
        (lambda f: f.assign(high=f["high"].where(f.index != 7, f["low"] / 2)), "high/low inconsistent"),
        (lambda f: f.assign(close=f["close"].astype(str).where(f.index != 3, "abc")), "non-numeric"),
        (lambda f: f.assign(time=f["time"].astype(str).where(f.index != 2, "yesterday")), "cannot parse time"),
        (lambda f: f.iloc[0:0], "no bars"),
    ],
)
def test_bad_data_gets_one_clear_error(tmp_path, good, mutate, needle):
    with pytest.raises(DataError, match=needle):
        load_bars(write(tmp_path, mutate(good)))


def test_missing_and_unsupported_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_bars(tmp_path / "nope.csv")
    (tmp_path / "bars.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported data format"):
        load_bars(tmp_path / "bars.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read as parquet"):
        load_bars(tmp_path / "bad.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="cannot parse"):
        load_bars(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_bars(tmp_path)


def test_gap_limit_is_configurable(tmp_path, good):
    gappy = good.assign(time=good["time"].where(good.index < 30, good["time"] + pd.Timedelta(days=20)))
    path = write(tmp_path, gappy)
    with pytest.raises(DataError, match="gap of"):
        load_bars(path, max_gap=5)
    assert len(load_bars(path, max_gap=0)) == 60  # 0 disables the check


def test_a_missing_stretch_of_daily_bars_is_refused_by_default(tmp_path, goog):
    """60 trading days missing from GOOG (an 88-day hole) is no market closure."""
    frame = goog.reset_index()
    holed = pd.concat([frame.iloc[:500], frame.iloc[560:]])
    with pytest.raises(DataError, match=r"gap of 88 days.*default limit of 10 days"):
        load_bars(write(tmp_path, holed))
    assert len(load_bars(write(tmp_path, holed), max_gap=100)) == len(holed)  # an explicit limit wins


def test_default_gap_limit_follows_the_bar_spacing():
    day, hour, minute = 86_400e9, 3_600e9, 60e9
    assert gap_limit(day, None)[0] == 10 * day  # daily: holiday weekends pass, missing weeks do not
    assert gap_limit(hour, None)[0] == 100 * hour  # hourly: FX weekends (about 49 h) pass
    assert gap_limit(minute, None)[0] == 100 * minute  # intraday: at most 100 spacings
    assert gap_limit(minute, 0)[0] == 0  # 0 disables the check


def test_fx_weekends_are_not_gaps(eurusd):
    assert len(eurusd) == 5000


def test_demo_market_is_seeded_valid_and_varied():
    a = demo.generate(3, 400, seed=11)
    b = demo.generate(3, 400, seed=11)
    c = demo.generate(3, 400, seed=12)
    for sym in a:
        pd.testing.assert_frame_equal(a[sym], b[sym])
        validate_bars(a[sym].reset_index(), sym)
    assert not a["ALPHA"].equals(c["ALPHA"])
    closes = np.array([f["close"].to_numpy() for f in a.values()])
    rets = np.diff(np.log(closes), axis=1)
    assert np.corrcoef(rets)[0, 1] > 0.05  # shared market factor
    assert len(demo.demo_symbols(12)) == 12


def test_to_ohlcv_keeps_time_and_interval(goog):
    o = to_ohlcv(goog)
    assert o.ts[0] == pd.Timestamp("2004-08-19", tz="UTC").timestamp()
    assert o.interval_s == 86_400
