"""The trading runtime: feeds, cascade, executor, brokers, ledger, risk and backtester."""
