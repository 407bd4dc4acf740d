"""Predictive CLV at scale: summarise a transaction log and fit BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma on 1M
synthetic customers, side by side with the `lifetimes` library on the same data when it is installed.

    .venv/bin/pip install lifetimes      # only for this benchmark: the baseline
    .venv/bin/python bench/bench_clv.py                      # 1M customers
    .venv/bin/python bench/bench_clv.py --customers 200000 --no-lifetimes
    .venv/bin/python bench/bench_clv.py --lifetimes-pareto   # also lifetimes' Pareto/NBD: minutes

The log is drawn from a BG/NBD process with the CDNOW estimates (r 0.243, α 4.414, a 0.793, b 2.426;
weeks), first purchases spread over 12 weeks, observed for 78, spend from a Gamma-Gamma process
(p 6.25, q 3.74, γ 15.44); one row per purchase, dated by day.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import polars as pl
from common import machine

from siyu.clv.fitters.base import group_rows
from siyu.clv.fitters.bgnbd import BetaGeoFitter, ModifiedBetaGeoFitter
from siyu.clv.fitters.gamma_gamma import GammaGammaFitter
from siyu.clv.fitters.pareto_nbd import ParetoNBDFitter
from siyu.clv.summary import summarise

START = date(1997, 1, 1)
WEEKS = 78
CALIBRATION_WEEKS = 78


def simulate(customers: int, seed: int) -> pl.DataFrame:
    """A BG/NBD purchase log with Gamma-Gamma spend (vectorised; a round per purchase)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.243, 1 / 4.414, customers)  # purchases per week while alive
    dropout = rng.beta(0.793, 2.426, customers)
    nu = rng.gamma(3.74, 1 / 15.44, customers)
    first = rng.uniform(0, 12, customers)
    ids, times = [np.arange(customers)], [first]
    alive = np.arange(customers)
    now = first.copy()
    while alive.size:
        now[alive] += rng.exponential(1.0, alive.size) / np.maximum(rate[alive], 1e-12)
        alive = alive[now[alive] < WEEKS]
        ids.append(alive)
        times.append(now[alive])
        alive = alive[rng.random(alive.size) >= dropout[alive]]  # dropped out after this purchase
    customer = np.concatenate(ids)
    week = np.concatenate(times)
    amount = rng.gamma(6.25, 1 / nu[customer])
    epoch_days = (START - date(1970, 1, 1)).days + np.floor(week * 7).astype("int32")
    return pl.DataFrame(
        {
            "customer_id": customer,
            "date": pl.Series(epoch_days, dtype=pl.Int32).cast(pl.Date),
            "amount": np.round(amount, 2),
        }
    )


def timed(label: str, results: dict[str, float], fn, *args, repeat: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    """Run `fn` `repeat` times; record the median seconds (the first run also pays for touching fresh
    memory, which on this VM costs more than the arithmetic)."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - started)
    results[label] = float(np.median(seconds))
    results[f"{label} (first)"] = seconds[0]
    return value


def relative_difference(ours: dict[str, float], theirs: dict[str, float]) -> float:
    return max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in theirs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-lifetimes", action="store_true", help="skip the lifetimes baseline")
    parser.add_argument(
        "--lifetimes-pareto",
        action="store_true",
        help="also fit lifetimes' Pareto/NBD (minutes on 1M customers)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the median is reported")
    args = parser.parse_args()
    print(machine())
    log = simulate(args.customers, args.seed)
    end = START + timedelta(weeks=CALIBRATION_WEEKS)
    print(f"{args.customers:,} customers, {log.height:,} transactions, calibration end {end}")

    ours: dict[str, float] = {}
    n = args.repeat
    histories = timed("summarise", ours, summarise, log, calibration_end=end, unit="week", repeat=n)
    grouped = group_rows(histories.frequency, histories.recency, histories.T)
    repeat = histories.frequency > 0
    print(
        f"{len(grouped[1]):,} distinct (frequency, recency, T) histories; {int(repeat.sum()):,} repeat buyers"
    )
    f, r, t = histories.frequency, histories.recency, histories.T
    bg = timed("BG/NBD", ours, BetaGeoFitter().fit, f, r, t, repeat=n)
    mbg = timed("MBG/NBD", ours, ModifiedBetaGeoFitter().fit, f, r, t, repeat=n)
    pareto = timed("Pareto/NBD", ours, ParetoNBDFitter().fit, f, r, t, repeat=n)
    gg = timed(
        "Gamma-Gamma", ours, GammaGammaFitter().fit, f[repeat], histories.monetary_value[repeat], repeat=n
    )
    fitted = {
        "BG/NBD": bg.params_,
        "MBG/NBD": mbg.params_,
        "Pareto/NBD": pareto.params_,
        "Gamma-Gamma": gg.params_,
    }

    theirs: dict[str, float] = {}
    their_params: dict[str, dict[str, float]] = {}
    if not args.no_lifetimes:
        try:
            import lifetimes  # type: ignore[import-untyped]
        except ImportError:
            print("lifetimes is not installed: `.venv/bin/pip install lifetimes` for the baseline")
        else:
            import pandas as pd

            frame = pd.DataFrame(
                {
                    "customer_id": log["customer_id"].to_numpy(),
                    "date": log["date"].cast(pl.Datetime).to_numpy(),
                    "amount": log["amount"].to_numpy(),
                }
            )
            summary = timed(
                "summarise",
                theirs,
                lifetimes.utils.summary_data_from_transaction_data,
                frame,
                "customer_id",
                "date",
                monetary_value_col="amount",
                observation_period_end=str(end),
                freq="D",
                freq_multiplier=7,
            )
            lf, lr, lt = summary["frequency"], summary["recency"], summary["T"]
            models = [("BG/NBD", lifetimes.BetaGeoFitter()), ("MBG/NBD", lifetimes.ModifiedBetaGeoFitter())]
            if args.lifetimes_pareto:
                models.append(("Pareto/NBD", lifetimes.ParetoNBDFitter()))
            for label, model in models:
                timed(label, theirs, model.fit, lf, lr, lt)
                their_params[label] = {k: float(v) for k, v in model.params_.items()}
            rep = summary["frequency"] > 0
            gamma_gamma = lifetimes.GammaGammaFitter()
            timed(
                "Gamma-Gamma",
                theirs,
                gamma_gamma.fit,
                summary["frequency"][rep],
                summary["monetary_value"][rep],
            )
            their_params["Gamma-Gamma"] = {
                {"v": "gamma"}.get(k, k): float(v) for k, v in gamma_gamma.params_.items()
            }

    print(f"siyu: median of {n} runs (first run in brackets); lifetimes: one run")
    print(
        f"{'step':<12} {'siyu s':>16} {'lifetimes s':>12} {'speed-up':>9}  max relative parameter difference"
    )
    for step, seconds in ours.items():
        if step.endswith("(first)"):
            continue
        other = theirs.get(step)
        diff = relative_difference(fitted[step], their_params[step]) if step in their_params else None
        print(
            f"{step:<12} {seconds:>7.3f} ({ours[step + ' (first)']:>6.3f}) "
            f"{other if other is not None else float('nan'):>12.3f} "
            f"{(other / seconds) if other else float('nan'):>8.1f}×  {'' if diff is None else f'{diff:.1e}'}"
        )
    for step, params in fitted.items():
        print(f"  {step}: " + ", ".join(f"{k} {v:.6g}" for k, v in params.items()))


if __name__ == "__main__":
    main()
