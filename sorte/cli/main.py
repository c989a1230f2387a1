"""The ``sorte`` command line: a thin front-end over the service layer."""

from __future__ import annotations

import asyncio
import json
import signal
from functools import partial
from pathlib import Path
from typing import Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from sorte import paths
from sorte.cli.account import reconcile_cmd
from sorte.cli.agent import ask_cmd, resume_cmd, runs_app
from sorte.cli.book import positions_cmd, profit_cmd, trades_cmd
from sorte.cli.deploy import commander_cmd, deploy_cmd, rollback_cmd
from sorte.cli.edit import branches_app, edit_cmd
from sorte.cli.lessons import lessons_cmd
from sorte.cli.pairs import pairs_cmd
from sorte.cli.status import status_cmd
from sorte.cli.up import up_cmd
from sorte.cli.validate import validate_cmd
from sorte.config import Settings, load_settings
from sorte.errors import SorteError
from sorte.logging import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Sorte: a self-modifying autonomous trading agent.")
console = Console()
err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (else SORTE_CONFIG or ./sorte.yaml)")
MaxGapOpt = typer.Option(
    None,  # sorte.runtime.data.DEFAULT_MAX_GAP: the runtime (pandas) loads only for the commands that trade
    "--max-gap",
    help="Largest gap allowed, in median bar spacings (0: no limit). "
    "Default: 10 spacings, at least 5 days so market closures pass, at most 100 spacings",
)


def _settings(config: Path | None, **overrides) -> Settings:
    settings = load_settings(config, **overrides)
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _fail(exc: SorteError) -> None:
    from rich.markup import escape  # errors echo paths, branches and ids: "[bold]x[/]" must print as typed

    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(2)


@app.command("config")
def config_cmd(config: Path | None = ConfigOpt) -> None:
    """Print the effective configuration, secrets masked."""
    try:
        settings = _settings(config)
    except SorteError as exc:
        _fail(exc)
    console.print_json(json.dumps(settings.masked(), default=str))


@app.command("strategies")
def strategies_cmd(config: Path | None = ConfigOpt) -> None:
    """List the strategies and their declared parameters."""
    from sorte.runtime.strategy import available_strategies, read_param_specs

    try:
        settings = _settings(config)
        table = Table(
            Column("strategy", no_wrap=True),
            Column("parameter", no_wrap=True),
            "type",
            "default",
            "bounds",
            "description",
        )
        folder = paths.strategies_dir(settings)
        for name in available_strategies(folder):
            for pname, spec in read_param_specs(folder / f"{name}.py").items():
                table.add_row(
                    name,
                    pname,
                    spec.type,
                    str(spec.default),
                    f"[{spec.min:g}, {spec.max:g}]" if spec.min is not None else "",
                    spec.doc,
                )
                name = ""
    except SorteError as exc:
        _fail(exc)
    console.print(table)


@app.command("run")
def run_cmd(
    data: list[Path] = typer.Option(
        [], "--data", "-d", help="Replay file(s), one per symbol; default: bundled demo market"
    ),
    feed: str | None = typer.Option(
        None, help="replay (files or demo) or ccxt (live exchange data); b3 runs through `sorte up --feed b3`"
    ),
    symbol: list[str] = typer.Option([], "--symbol", "-s", help="Exchange symbol for the ccxt feed"),
    config: Path | None = ConfigOpt,
    speed: float | None = typer.Option(None, help="Replay speed (0 = as fast as possible)"),
    interval: float | None = typer.Option(None, help="Batch interval in seconds"),
    max_steps: int | None = typer.Option(None, help="Stop after this many steps"),
    ledger: Path | None = typer.Option(None, help="Ledger file (default <data_dir>/<mode>/ledger.db)"),
    fresh: bool = typer.Option(False, help="Archive the existing ledger and start over"),
    metrics_port: int | None = typer.Option(None, help="Serve Prometheus metrics on this port"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print the summary"),
    max_gap: float | None = MaxGapOpt,
) -> None:
    """Run the trading runtime (paper mode unless configured for live trading), printing decisions."""
    from sorte.runtime import assembly

    updates = {"feed": feed, "symbols": symbol or None, "speed": speed, "batch_interval_s": interval}
    listener = partial(_print_event, quiet)
    try:
        settings = assembly.with_runtime(_settings(config), **{k: v for k, v in updates.items() if v is not None})
        rs = settings.runtime
        if rs.feed == "ccxt" or rs.mode == "live":
            from sorte.runtime.live import build_live_session

            if data:
                raise SorteError("--data replays files; it does not combine with the ccxt feed")
            session = build_live_session(settings, ledger, fresh, listener)
        else:
            session = assembly.build_paper_session(settings, data or None, ledger, fresh, listener, max_gap)
    except SorteError as exc:
        _fail(exc)
    rt = session.runtime
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=rt.metrics.registry)
    mode = "LIVE TRADING" if settings.runtime.mode == "live" else "paper mode"
    console.print(
        f"[bold]Sorte runtime[/] {mode} · {settings.runtime.feed} feed · symbols {', '.join(rt.feed.symbols)} · "
        f"ledger {session.ledger_path}"
    )
    try:
        summary = asyncio.run(_run_until_signal(rt, max_steps))
    except SorteError as exc:
        _fail(exc)
    finally:
        session.ledger.close()
        assembly.close_cascade(rt.cascade)
    _print_summary(summary.model_dump())


async def _run_until_signal(rt, max_steps):
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, rt.stop)
    return await rt.run(max_steps)


def _print_event(quiet: bool, kind: str, payload: object) -> None:
    from sorte.runtime.values import Decision, Fill, side_name

    if kind == "resumed":
        console.print(f"[yellow]resuming the unfinished run from step {payload}[/]")
    elif quiet:
        return
    elif kind == "decision":
        d, report = cast("tuple[Decision, Any]", payload)
        assert isinstance(d, Decision)
        color = "green" if d.side > 0 else "red"
        outcome = ", ".join(f"{o.purpose} {o.qty:g}" for o in report.orders) or report.skipped
        console.print(
            f"[dim]{d.seq:>5}[/] {d.symbol:<8} [{color}]{side_name(d.side):<4}[/] "
            f"conf {d.confidence:.2f} {d.strategy}: {d.stages[0].reason} -> {outcome}"
        )
    elif kind == "fill":
        f = payload
        assert isinstance(f, Fill)
        console.print(
            f"[dim]{f.seq:>5}[/] {f.symbol:<8} fill {side_name(f.side)} {f.qty:g} @ "
            f"{f.price:.4f} ({f.purpose}) pnl {f.realized_pnl:+.2f}"
        )


def _print_summary(data: dict) -> None:
    table = Table("metric", "value", title="Summary")
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@app.command("backtest")
def backtest_cmd(
    strategy: str = typer.Argument(..., help="Strategy name, or 'cascade' for the configured cascade"),
    data: list[Path] = typer.Option(
        [], "--data", "-d", help="CSV/Parquet file(s), one per symbol; default: demo market"
    ),
    param: list[str] = typer.Option([], "--param", "-p", help="Override a parameter: name=value"),
    trades: Path | None = typer.Option(None, help="Write the trade list (CSV)"),
    plot: Path | None = typer.Option(None, help="Write the equity curve (PNG)"),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON"),
    min_confidence: float | None = typer.Option(None, min=0, max=1, help="Trade only at this confidence"),
    replay: bool = typer.Option(False, help="LLM stages answer only from the cache (never call a model)"),
    config: Path | None = ConfigOpt,
    max_gap: float | None = MaxGapOpt,
) -> None:
    """Backtest a strategy on historical bars and print its metrics."""
    from sorte.runtime import assembly

    try:
        settings = _settings(config)
        if replay:
            settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"replay": True})})
        params = assembly.parse_params(param)
        if strategy == "cascade" and params:
            raise SorteError("--param applies to a single strategy, not to the cascade")
        with Progress(
            TextColumn("[bold]backtest"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("bars", total=None)
            cascade, result = assembly.backtest(
                settings,
                None if strategy == "cascade" else strategy,
                data,
                params,
                lambda done, total: bar.update(task, completed=done, total=total),
                max_gap,
                min_confidence,
            )
    except SorteError as exc:
        _fail(exc)
    m = result.metrics
    table = Table("metric", "value", title=f"Backtest: {strategy}")
    rows = [
        ("return", f"{m.total_return_pct:.2f} %"),
        ("sharpe", f"{m.sharpe:.2f}"),
        ("sortino", f"{m.sortino:.2f}"),
        ("max drawdown", f"{m.max_drawdown_pct:.2f} %"),
        ("VaR 95%", f"{m.var_95_pct:.2f} %"),
        ("win rate", f"{m.win_rate_pct:.1f} %"),
        ("trades", str(m.trades)),
        ("exposure", f"{m.exposure_pct:.1f} %"),
        ("fees", f"{m.fees:.2f}"),
        ("final equity", f"{m.final_equity:,.2f}"),
        ("bars", str(m.bars)),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if trades:
        trades.parent.mkdir(parents=True, exist_ok=True)
        assembly.trades_frame(result).to_csv(trades, index=False)
        console.print(f"trades -> {trades}")
    if plot:
        from sorte.runtime.plot import plot_equity

        plot_equity(result.equity, plot, f"{strategy} equity")
        console.print(f"equity curve -> {plot}")
    if json_out:
        assembly.write_summary_json(json_out, m.model_dump())
        console.print(f"metrics -> {json_out}")


@app.command("control")
def control_cmd(
    interval: float | None = typer.Option(None, help="New batch interval in seconds"),
    pause: bool = typer.Option(False, "--pause", help="Stop new entries"),
    resume: bool = typer.Option(False, "--resume", help="Allow new entries again"),
    config: Path | None = ConfigOpt,
) -> None:
    """Change a running runtime's batch interval or pause new entries, without restart."""
    from sorte.runtime.control import write_control

    try:
        settings = _settings(config)
        if pause and resume:
            raise SorteError("--pause and --resume exclude each other")
        if pause or resume:  # through the service layer: audited like Telegram's /pause and the page's button
            from sorte.service import actions
            from sorte.service.access import LOCAL

            (actions.pause if pause else actions.resume)(settings, LOCAL)
        data = write_control(paths.control_file(settings.data_dir), interval)
    except SorteError as exc:
        _fail(exc)
    console.print_json(json.dumps(data))


@app.command("doctor")
def doctor_cmd(
    config: Path | None = ConfigOpt,
    ping: bool = typer.Option(True, help="Time a one-token call per role (loads local models)"),
    timeout: float = typer.Option(60.0, help="Seconds allowed per check"),
) -> None:
    """Check the LLM backends: reachability, models, GPU, one-token latency, cache statistics."""
    from sorte.llm.build import doctor
    from sorte.llm.doctor import summary_lines

    try:
        settings = _settings(config)
        report = doctor(settings, ping, timeout)
    except SorteError as exc:
        _fail(exc)
    table = Table("backend", "kind", "reachable", "models", "gpu", "detail", title="LLM backends")
    for b in report.backends:
        models = ", ".join(b.models[:4]) + (" ..." if len(b.models) > 4 else "")
        table.add_row(b.name, b.kind, "[green]yes[/]" if b.reachable else "[red]no[/]", models, b.gpu, b.detail)
    console.print(table)
    roles = Table("role", "backend", "model", "present", "one-token call", "problem", title="Roles")
    for r in report.roles:
        present = "-" if r.model_present is None else ("yes" if r.model_present else "[red]no[/]")
        took = "-" if r.one_token_s is None else _duration(r.one_token_s)
        roles.add_row(r.role, r.backend, r.model, present, took, r.error or "")
    console.print(roles)
    for line in summary_lines(report):
        console.print(line)


app.command("edit")(edit_cmd)
app.command("validate")(validate_cmd)
app.command("lessons")(lessons_cmd)
app.command("status")(status_cmd)
app.command("up")(up_cmd)
app.command("positions")(positions_cmd)
app.command("trades")(trades_cmd)
app.command("profit")(profit_cmd)
app.add_typer(branches_app, name="branches")
app.command("ask")(ask_cmd)
app.command("resume")(resume_cmd)
app.add_typer(runs_app, name="runs")
app.command("commander")(commander_cmd)
app.command("deploy")(deploy_cmd)
app.command("rollback")(rollback_cmd)
app.command("pairs")(pairs_cmd)
app.command("reconcile")(reconcile_cmd)


def _duration(seconds: float) -> str:
    """Milliseconds under a second: a warm one-token call takes a few."""
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
