"""Culture-aligned against efficiency-only management: the experiment of issue 3, item 6.

Runs every management strategy in ``conf/strategy/`` in every environment in
``conf/environment/`` (the same firms, seed and scenario in every cell), plus mechanism ablations
and assumption checks, and reports with 95% intervals the difference between the strategy
families on cumulative free cash flow, survival and credit headroom after 2 and 5 years.

The simulation, the per-firm outcomes and the paired statistics are :func:`orgsim.comparison.compare`'s
(see ``docs/comparison.md``): this script chooses the arms (strategies, ablations and assumption
checks, each a list of config overrides), the contrasts the report needs, and writes the report.

Usage::

    python experiments/strategy_families.py [--firms N] [--engine mesa|numba] [--out DIR]
        [--seed S] [--jobs J] [--report PATH] [--environments E ...] [--no-ablations]
        [--report-only]

It writes the per-firm outcomes (``outcomes.parquet`` and ``outcomes.csv.gz``), every estimated
contrast (``contrasts.csv``) and the run's provenance (``run.json``) to ``--out``, and the
Markdown report to ``--report`` (``docs/results.md`` by default). ``--report-only`` rebuilds the
report from the files in ``--out`` without simulating.

Nothing here decides an outcome: the script only chooses which configs to run and how to
summarise them. The findings text is generated from the estimates, so it stays true when the
model or its parameters change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

import orgsim
from orgsim._io import source_state
from orgsim.comparison import FAMILY_CONTRAST, ComparisonResult, compare, paired_difference
from orgsim.simulation import atomic_write, package_versions

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
SCRIPT = "experiments/strategy_families.py"
DEFAULT_OUT = REPO / "experiments" / "output" / "strategy_families"
DEFAULT_REPORT = REPO / "docs" / "results.md"

SCENARIO = "multinational"
PERIODS = 260  # weeks: 5 years
HORIZONS = {"2y": 104, "5y": 260}
HORIZON_NAMES = {"2y": "2 years", "5y": "5 years"}
ALPHA = 0.05

BASELINE, EFFICIENCY, CULTURE = "baseline", "efficiency_only", "culture_aligned"
#: environment presets that are not markets: `native` switches the environment off for the
#: classic scenarios (no demand noise, shocks or disruptions)
EXCLUDED_ENVIRONMENTS = {"native"}
#: display order (anything else follows alphabetically)
ENV_ORDER = ("stable", "volatile", "disrupted")
STRATEGY_ORDER = ("none", "bpo", "bpm", "bpo_bpm", "bso")
#: the efficiency-only strategy that runs the same BPO and BPM programmes as the culture-aligned
#: one; ablations and assumption checks are built around this pair
CULTURE_REF, EFFICIENCY_REF = "bso", "bpo_bpm"

#: the outcomes reported (names of orgsim.comparison.OUTCOMES)
OUTCOMES = {
    "cumulative_fcf": "cumulative free cash flow (MU)",
    "survival": "survival",
    "credit_headroom": "credit headroom (MU)",
}
#: diagnostics compared between CULTURE_REF and EFFICIENCY_REF (5 years)
DIAGNOSTICS = ("mean_knowledge", "code_knowledge", "fill_rate", "cum_programme_cost", "cum_revenue")


# ----------------------------------------------------------------------------------------------
# what is run
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    """A strategy config, optionally with overrides on top (an ablation or assumption check)."""

    key: str
    strategy: str
    overrides: tuple[str, ...] = ()
    label: str = ""
    kind: str = "main"  # main | ablation | assumption

    @property
    def parent(self) -> str:
        return self.strategy

    @property
    def arm(self) -> list[str]:
        """The overrides that make this arm of the comparison."""
        return [f"strategy={self.strategy}", *self.overrides]


#: mechanism ablations, each a switch on top of one strategy (reported at 5 years)
ABLATIONS = (
    Variant(
        key="bpo_bpm+constraint",
        strategy="bpo_bpm",
        overrides=("management.bpo_target=constraint", "management.bpm_focus=constraint"),
        label="bpo_bpm with BPO projects and BPM maturity aimed at the firm's constraint",
        kind="ablation",
    ),
    Variant(
        key="bpo_bpm+shared",
        strategy="bpo_bpm",
        overrides=("information=shared",),
        label="bpo_bpm with shared end-customer demand information",
        kind="ablation",
    ),
    Variant(
        key="bso-culture",
        strategy="bso",
        overrides=("management.alignment_rate=0", "management.socialisation_boost=0"),
        label="bso without the culture programme, i.e. bpo_bpm aimed at the constraint with shared information",
        kind="ablation",
    ),
    Variant(
        key="bso-socialisation",
        strategy="bso",
        overrides=("management.socialisation_boost=0",),
        label="bso with accountability alignment but no socialisation boost",
        kind="ablation",
    ),
    Variant(
        key="bso-shared",
        strategy="bso",
        overrides=("information=local",),
        label="bso with local information only",
        kind="ablation",
    ),
)

#: the path from bpo_bpm to bso, one mechanism per step; the steps add up to the gap exactly
PATH = (
    ("bpo_bpm", "bpo_bpm+constraint", "aim BPO and BPM at the firm's constraint"),
    ("bpo_bpm+constraint", "bso-culture", "share end-customer demand information"),
    ("bso-culture", "bso-socialisation", "align accountability (w → alignment_weight), pay alignment_cost"),
    ("bso-socialisation", "bso", "raise socialisation p1 (socialisation_boost)"),
)

#: assumptions about how knowledge drives decisions, each applied to both CULTURE_REF and
#: EFFICIENCY_REF
ASSUMPTIONS = (
    (
        "kappa0",
        ("culture.cost_sensitivity=0",),
        "knowledge does not change unit costs (κ = culture.cost_sensitivity = 0)",
    ),
    (
        "knowledge_inert",
        ("culture.cost_sensitivity=0", "culture.beta_sensitivity=0", "culture.forecast_noise=0"),
        "knowledge changes no decision (κ = λ_β = σ_F = 0)",
    ),
)


def assumption_variants() -> tuple[Variant, ...]:
    return tuple(
        Variant(key=f"{s}@{key}", strategy=s, overrides=ov, label=f"{s}: {label}", kind="assumption")
        for key, ov, label in ASSUMPTIONS
        for s in (CULTURE_REF, EFFICIENCY_REF)
    )


def discover(environments: Sequence[str] | None) -> tuple[dict[str, str], list[str]]:
    """Strategies (name -> family, read from the composed configs) and environments."""
    families = {}
    for path in sorted(CONF.glob("strategy/*.yaml")):
        families[path.stem] = orgsim.compose([f"strategy={path.stem}"]).strategy.family
    envs = sorted(
        (p.stem for p in CONF.glob("environment/*.yaml") if p.stem not in EXCLUDED_ENVIRONMENTS),
        key=lambda e: (ENV_ORDER.index(e) if e in ENV_ORDER else len(ENV_ORDER), e),
    )
    if environments:
        unknown = sorted(set(environments) - {p.stem for p in CONF.glob("environment/*.yaml")})
        if unknown:
            raise SystemExit(f"--environments: unknown environment(s) {unknown}")
        envs = list(environments)
    order = {BASELINE: 0, EFFICIENCY: 1, CULTURE: 2}
    rank = {s: i for i, s in enumerate(STRATEGY_ORDER)}
    families = dict(
        sorted(families.items(), key=lambda kv: (order.get(kv[1], 3), rank.get(kv[0], len(rank)), kv[0]))
    )
    return families, envs


def run_comparison(
    variants: Sequence[Variant], envs: list[str], firms: int, seed: int, engine: str, jobs: int
) -> ComparisonResult:
    """Every variant in every environment on common random numbers (orgsim.comparison.compare)."""
    return compare(
        [f"scenario={SCENARIO}"],
        strategies={v.key: v.arm for v in variants},
        environments=envs,
        n_orgs=firms,
        periods=PERIODS,
        seed=seed,
        engine=engine,
        horizons=tuple(HORIZONS.values()),
        n_jobs=jobs,
        progress=True,
    )


def outcome_table(result: ComparisonResult, variants: Sequence[Variant]) -> pd.DataFrame:
    """The result's per-firm outcomes, one row per environment, variant, firm and horizon, with
    the variant's kind, overrides and strategy, and the horizon's label ("2y", "5y")."""
    out = result.outcomes().rename(columns={"strategy": "variant"})
    by_key = {v.key: v for v in variants}
    out["variant"] = out.variant.astype(str)
    out["environment"] = out.environment.astype(str)
    out.insert(2, "kind", out.variant.map(lambda k: by_key[k].kind))
    out.insert(3, "overrides", out.variant.map(lambda k: " ".join(by_key[k].overrides)))
    out.insert(4, "strategy", out.variant.map(lambda k: by_key[k].strategy))
    labels = {weeks: h for h, weeks in HORIZONS.items()}
    out.insert(out.columns.get_loc("horizon") + 1, "weeks", out.horizon)
    out["horizon"] = out.horizon.map(labels)
    return out.drop(columns=["seed", "org"])


# ----------------------------------------------------------------------------------------------
# statistics (orgsim.comparison; the unpaired Welch interval is kept for contrasts.csv)
# ----------------------------------------------------------------------------------------------
def arm_values(
    outcomes: pd.DataFrame, env: str, horizon: str, variants: Sequence[str], col: str
) -> np.ndarray:
    """Per-firm value of an arm from the outcome table: the mean over its variants of each firm's
    outcome (what ``ComparisonResult.values`` gives)."""
    sel = outcomes[(outcomes.environment == env) & (outcomes.horizon == horizon)]
    mats = []
    for v in variants:
        s = sel[sel.variant == v].sort_values("firm")[col].to_numpy(dtype=float)
        if s.size == 0:
            raise KeyError(f"no outcomes for {env}/{v}/{horizon}")
        mats.append(s)
    return np.mean(mats, axis=0)


def paired_t(d: np.ndarray) -> tuple[float, float, float]:
    """Mean of per-firm differences with its paired t interval (orgsim.comparison)."""
    r = paired_difference(d, ALPHA)
    return r["mean"], r["mean_ci_lower"], r["mean_ci_upper"]


def contrast(
    result: ComparisonResult,
    env: str,
    horizon: str,
    name: str,
    arm_a: Sequence[str],
    arm_b: Sequence[str],
    kind: str,
    cols: Sequence[str] = tuple(OUTCOMES),
) -> list[dict]:
    """Estimate arm_a − arm_b for each outcome; returns tidy rows (several methods)."""
    rows = []
    base = {"environment": env, "horizon": horizon, "contrast": name, "kind": kind}
    weeks = HORIZONS[horizon]
    frame = result.contrast(
        arm_a, arm_b, name=name, outcomes=cols, horizons=[weeks], environments=[env], alpha=ALPHA
    )
    for col, r in zip(cols, frame.itertuples()):
        a, b = result.values(env, arm_a, col, weeks), result.values(env, arm_b, col, weeks)
        primary_row = {
            **base,
            "outcome": col,
            "method": r.interval,
            "estimate": r.mean,
            "ci_lower": r.mean_ci_lower,
            "ci_upper": r.mean_ci_upper,
            "n": r.n,
        }
        if r.interval != "paired_t":  # survival: the paired t (Wald) interval too, for comparison
            est, lo, hi = paired_t(a - b)
            rows.append(
                {**primary_row, "method": "paired_t", "estimate": est, "ci_lower": lo, "ci_upper": hi}
            )
            rows.append(primary_row)
            continue
        rows.append(primary_row)
        if len(arm_a) + len(arm_b) > 2:  # pooled firms, ignoring the pairing (for comparison)
            pooled_a = np.concatenate([result.values(env, v, col, weeks) for v in arm_a])
            pooled_b = np.concatenate([result.values(env, v, col, weeks) for v in arm_b])
            cm = CompareMeans(DescrStatsW(pooled_a), DescrStatsW(pooled_b))
            lo, hi = cm.tconfint_diff(alpha=ALPHA, usevar="unequal")
            rows.append(
                {
                    **base,
                    "outcome": col,
                    "method": "welch_pooled_unpaired",
                    "estimate": pooled_a.mean() - pooled_b.mean(),
                    "ci_lower": float(lo),
                    "ci_upper": float(hi),
                    "n": f"{pooled_a.size} vs {pooled_b.size}",
                }
            )
    return rows


PRIMARY = {"cumulative_fcf": "paired_t", "survival": "newcombe", "credit_headroom": "paired_t"}


def estimate_all(result: ComparisonResult, families: dict[str, str], envs: list[str]) -> pd.DataFrame:
    eff = [s for s, f in families.items() if f == EFFICIENCY]
    cul = [s for s, f in families.items() if f == CULTURE]
    base = [s for s, f in families.items() if f == BASELINE]
    have = set(result.strategies)
    rows = []

    def add(env, h, name, arm_a, arm_b, kind, cols=tuple(OUTCOMES)) -> list[dict]:
        return contrast(result, env, h, name, arm_a, arm_b, kind, cols)

    for env in envs:
        for h in HORIZONS:
            rows += add(env, h, FAMILY_CONTRAST, cul, eff, "family")
            for c in cul:
                for s in eff + base:
                    rows += add(env, h, f"{c} − {s}", [c], [s], "strategy")
            for s in base:
                rows += add(env, h, f"efficiency_only − {s}", eff, [s], "strategy")
        h = "5y"
        for ab in ABLATIONS:
            if ab.key not in have:
                continue
            rows += add(env, h, f"{ab.key} − {ab.parent}", [ab.key], [ab.parent], "ablation_effect")
            if ab.parent == CULTURE_REF:
                rows += add(
                    env,
                    h,
                    f"{ab.key} − {EFFICIENCY_REF}",
                    [ab.key],
                    [EFFICIENCY_REF],
                    "ablation_gap",
                )
            else:
                rows += add(env, h, f"{CULTURE_REF} − {ab.key}", [CULTURE_REF], [ab.key], "ablation_gap")
        if all(step[0] in have and step[1] in have for step in PATH):
            for frm, to, _ in PATH:
                rows += add(env, h, f"{to} − {frm}", [to], [frm], "path")
        for key, _, _ in ASSUMPTIONS:
            a, b = f"{CULTURE_REF}@{key}", f"{EFFICIENCY_REF}@{key}"
            if a in have and b in have:
                for hh in HORIZONS:
                    rows += add(env, hh, f"{a} − {b}", [a], [b], "assumption")
        if CULTURE_REF in have and EFFICIENCY_REF in have:
            rows += add(
                env,
                h,
                f"{CULTURE_REF} − {EFFICIENCY_REF}",
                [CULTURE_REF],
                [EFFICIENCY_REF],
                "diagnostic",
                DIAGNOSTICS,
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------
def fmt_money(x: float, sign: bool = True) -> str:
    return f"{x:+,.0f}" if sign else f"{x:,.0f}"


def fmt_pp(x: float, sign: bool = True) -> str:
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def fmt_num(x: float, sign: bool = True) -> str:
    return f"{x:+.3f}" if sign else f"{x:.3f}"


#: number format and unit of each outcome's differences (survival in percentage points)
FORMATS: dict[str, tuple[Callable[..., str], str]] = {
    "cumulative_fcf": (fmt_money, ""),
    "survival": (fmt_pp, " pp"),
    "credit_headroom": (fmt_money, ""),
    "mean_knowledge": (fmt_num, ""),
    "code_knowledge": (fmt_num, ""),
    "fill_rate": (fmt_num, ""),
    "cum_programme_cost": (fmt_money, ""),
    "cum_revenue": (fmt_money, ""),
    "weekly_fcf": (fmt_money, " MU/week"),
}


def interval(r: pd.Series | dict, sign: bool = True, flip: bool = False) -> str:
    """``estimate unit [lower, upper]``; ``flip`` reports the negated difference."""
    f, unit = FORMATS[r["outcome"]]
    est, lo, hi = r["estimate"], r["ci_lower"], r["ci_upper"]
    if flip:
        est, lo, hi = -est, -hi, -lo
    return f"{f(est, sign)}{unit} [{f(lo, sign)}, {f(hi, sign)}]"


def cell(r: pd.Series | dict) -> str:
    text = interval(r)
    return f"**{text}**" if significant(r) else text


def significant(r) -> bool:
    return r["ci_lower"] > 0 or r["ci_upper"] < 0


def pick(est: pd.DataFrame, **where) -> pd.DataFrame:
    sel = est
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return sel


def primary(est: pd.DataFrame, **where) -> dict:
    """The row of the primary method for one contrast, outcome, environment and horizon."""
    sel = pick(est, **where)
    if "outcome" in where and where["outcome"] in PRIMARY:
        sel = sel[sel.method == PRIMARY[where["outcome"]]]
    else:
        sel = sel[sel.method == "paired_t"]
    # a contrast listed under two kinds (an ablation that is also a step of the path) is one estimate
    sel = sel.drop_duplicates(subset=["environment", "horizon", "contrast", "outcome", "method"])
    if len(sel) != 1:
        raise KeyError(f"{len(sel)} rows for {where}")
    return sel.iloc[0].to_dict()


def best_at_cash(outcomes: pd.DataFrame, variants: Sequence[str]) -> str:
    """The variant with the highest mean cumulative free cash flow in ``outcomes``."""
    return max(variants, key=lambda v: pick(outcomes, variant=v).cumulative_fcf.mean())


def verdict(r: dict, pos: str, neg: str) -> str:
    """A sentence fragment from an estimate's sign and interval."""
    if r["ci_lower"] > 0:
        return f"{pos} higher by {interval(r, sign=False)}"
    if r["ci_upper"] < 0:
        return f"{neg} higher by {interval(r, sign=False, flip=True)}"
    return f"no significant difference ({interval(r)})"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def levels_table(outcomes: pd.DataFrame, families: dict[str, str], envs: list[str], h: str) -> str:
    rows = []
    for env in envs:
        for s, fam in families.items():
            sel = pick(outcomes, environment=env, variant=s, horizon=h)
            fcf = DescrStatsW(sel.cumulative_fcf.to_numpy(float))
            head = DescrStatsW(sel.credit_headroom.to_numpy(float))
            n, k = len(sel), int(sel.survival.sum())
            lo, hi = proportion_confint(k, n, alpha=ALPHA, method="wilson")
            f_lo, f_hi = fcf.tconfint_mean(alpha=ALPHA)
            h_lo, h_hi = head.tconfint_mean(alpha=ALPHA)
            rows.append(
                [
                    env,
                    f"`{s}`",
                    fam,
                    f"{fcf.mean:,.0f} [{f_lo:,.0f}, {f_hi:,.0f}]",
                    f"{100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]",
                    f"{head.mean:,.0f} [{h_lo:,.0f}, {h_hi:,.0f}]",
                ]
            )
    return md_table(
        ["environment", "strategy", "family", "cumulative FCF", "survival", "credit headroom"], rows, "lllrrr"
    )


def contrast_table(est: pd.DataFrame, envs: list[str], kind: str, horizons: Sequence[str]) -> str:
    rows = []
    for env in envs:
        for h in horizons:
            names = list(dict.fromkeys(pick(est, environment=env, horizon=h, kind=kind).contrast))
            for name in names:
                cells_ = [
                    cell(primary(est, environment=env, horizon=h, contrast=name, outcome=o)) for o in OUTCOMES
                ]
                n = primary(est, environment=env, horizon=h, contrast=name, outcome="cumulative_fcf")["n"]
                rows.append([env, HORIZON_NAMES[h], f"`{name}`", n, *cells_])
    return md_table(
        [
            "environment",
            "horizon",
            "contrast",
            "n firms",
            "Δ cumulative FCF",
            "Δ survival",
            "Δ credit headroom",
        ],
        rows,
        "lllrrrr",
    )


def diagnostics_table(outcomes: pd.DataFrame, families: dict[str, str], envs: list[str]) -> str:
    rows = []
    for env in envs:
        for s in families:
            sel = pick(outcomes, environment=env, variant=s, horizon="5y")
            net_op = (sel.cum_operating_cost - sel.cum_programme_cost).mean()
            rows.append(
                [
                    env,
                    f"`{s}`",
                    f"{sel.mean_knowledge.mean():.3f}",
                    f"{sel.code_knowledge.mean():.3f}",
                    f"{sel.mean_maturity.mean():.2f}",
                    f"{sel.fill_rate.mean():.3f}",
                    f"{sel.cum_revenue.mean():,.0f}",
                    f"{net_op:,.0f}",
                    f"{sel.cum_programme_cost.mean():,.0f}",
                    f"{sel.periods_solvent.mean():.0f}",
                ]
            )
    return md_table(
        [
            "environment",
            "strategy",
            "team knowledge",
            "code knowledge",
            "maturity",
            "fill rate",
            "revenue",
            "operating cost excl. programmes",
            "programme cost",
            "weeks solvent",
        ],
        rows,
        "llrrrrrrrr",
    )


def ablation_table(est: pd.DataFrame, envs: list[str], outcome: str) -> str:
    rows = []
    for env in envs:
        for ab in ABLATIONS:
            eff = pick(
                est, environment=env, horizon="5y", kind="ablation_effect", contrast=f"{ab.key} − {ab.parent}"
            )
            if eff.empty:
                continue
            gap_name = (
                f"{ab.key} − {EFFICIENCY_REF}" if ab.parent == CULTURE_REF else f"{CULTURE_REF} − {ab.key}"
            )
            e = primary(
                est, environment=env, horizon="5y", contrast=f"{ab.key} − {ab.parent}", outcome=outcome
            )
            g = primary(est, environment=env, horizon="5y", contrast=gap_name, outcome=outcome)
            rows.append([env, f"`{ab.key}`", f"{cell(e)}", f"`{gap_name}`: {cell(g)}"])
    return md_table(
        [
            "environment",
            "ablation",
            "change vs its parent strategy",
            "culture-aligned − efficiency-only after the change",
        ],
        rows,
        "llrr",
    )


def path_table(est: pd.DataFrame, envs: list[str]) -> str:
    rows = []
    for env in envs:
        for frm, to, what in PATH:
            name = f"{to} − {frm}"
            if pick(est, environment=env, horizon="5y", kind="path", contrast=name).empty:
                continue
            cells_ = [
                cell(primary(est, environment=env, horizon="5y", kind="path", contrast=name, outcome=o))
                for o in OUTCOMES
            ]
            rows.append([env, what, f"`{name}`", *cells_])
        total = f"{CULTURE_REF} − {EFFICIENCY_REF}"
        cells_ = [
            cell(primary(est, environment=env, horizon="5y", contrast=total, outcome=o)) for o in OUTCOMES
        ]
        rows.append([env, "**total**", f"`{total}`", *cells_])
    return md_table(
        ["environment", "step", "contrast", "Δ cumulative FCF", "Δ survival", "Δ credit headroom"],
        rows,
        "lllrrr",
    )


def assumption_table(est: pd.DataFrame, envs: list[str]) -> str:
    rows = []
    for env in envs:
        for h in HORIZONS:
            default = f"{CULTURE_REF} − {EFFICIENCY_REF}"
            cells_ = [
                cell(primary(est, environment=env, horizon=h, contrast=default, outcome=o)) for o in OUTCOMES
            ]
            rows.append([env, HORIZON_NAMES[h], "model defaults", *cells_])
            for key, _, label in ASSUMPTIONS:
                name = f"{CULTURE_REF}@{key} − {EFFICIENCY_REF}@{key}"
                if pick(est, environment=env, horizon=h, contrast=name).empty:
                    continue
                cells_ = [
                    cell(primary(est, environment=env, horizon=h, contrast=name, outcome=o)) for o in OUTCOMES
                ]
                rows.append([env, HORIZON_NAMES[h], label, *cells_])
    return md_table(
        ["environment", "horizon", "assumption", "Δ cumulative FCF", "Δ survival", "Δ credit headroom"],
        rows,
        "lllrrr",
    )


def short(outcome: str) -> str:
    return OUTCOMES[outcome].split(" (")[0]


def findings(
    est: pd.DataFrame, outcomes: pd.DataFrame, families: dict[str, str], envs: list[str]
) -> list[str]:
    """The Findings section, written from the estimates' signs and intervals."""
    fam = "culture_aligned − efficiency_only"
    eff = [s for s, f in families.items() if f == EFFICIENCY]
    cul = [s for s, f in families.items() if f == CULTURE]
    out = ["### The family difference", ""]
    tally = {"culture-aligned": 0, "efficiency-only": 0, "neither": 0}
    for env in envs:
        for h in HORIZONS:
            for o in OUTCOMES:
                r = primary(est, environment=env, horizon=h, contrast=fam, outcome=o)
                key = (
                    "culture-aligned"
                    if r["ci_lower"] > 0
                    else "efficiency-only"
                    if r["ci_upper"] < 0
                    else "neither"
                )
                tally[key] += 1
    total = sum(tally.values())
    out += [
        f"Of the {total} family comparisons ({len(envs)} environments × {len(HORIZONS)} horizons × "
        f"{len(OUTCOMES)} outcomes), the culture-aligned family is significantly higher in "
        f"{tally['culture-aligned']}, the efficiency-only family in {tally['efficiency-only']}, and "
        f"{tally['neither']} show no significant difference.",
        "",
    ]
    for env in envs:
        out.append(f"- **{env}**")
        for h in HORIZONS:
            bits = [
                f"{short(o)}: "
                + verdict(
                    primary(est, environment=env, horizon=h, contrast=fam, outcome=o),
                    "culture-aligned",
                    "efficiency-only",
                )
                for o in OUTCOMES
            ]
            out.append(f"  - after {HORIZON_NAMES[h]}: " + "; ".join(bits) + ".")
    out.append("")
    strongest = []
    for env in envs:
        ref = pick(outcomes, environment=env, horizon="5y")
        best = best_at_cash(ref, eff)
        for c in cul:
            bits = [
                f"{short(o)} {cell(primary(est, environment=env, horizon='5y', contrast=f'{c} − {best}', outcome=o))}"
                for o in OUTCOMES
            ]
            strongest.append(f"- {env}: `{c} − {best}`: " + "; ".join(bits) + ".")
    out += [
        "The family pools efficiency-only strategies of unequal strength, so it is worth reading against "
        "the strongest of them alone, the one with the highest 5-year cumulative FCF in each environment "
        "(5 years):",
        "",
        *strongest,
        "",
    ]

    # where efficiency-only wins or ties
    wins, ties = [], []
    for env in envs:
        for h in HORIZONS:
            for c in cul:
                for s in eff:
                    for o in OUTCOMES:
                        r = primary(est, environment=env, horizon=h, contrast=f"{c} − {s}", outcome=o)
                        label = f"{env}, {HORIZON_NAMES[h]}, {short(o)}: `{c} − {s}` = {cell(r)}"
                        if r["ci_upper"] < 0:
                            wins.append(label)
                        elif r["ci_lower"] <= 0:
                            ties.append(label)
    n_comp = len(envs) * len(HORIZONS) * len(cul) * len(eff) * len(OUTCOMES)
    out += ["### Where efficiency-only wins or ties", ""]
    if wins:
        out.append(
            f"An efficiency-only strategy is significantly better than the culture-aligned one in "
            f"{len(wins)} of {n_comp} paired strategy comparisons:"
        )
        out += [f"- {w}" for w in wins]
    else:
        out.append(
            f"No efficiency-only strategy is significantly better than the culture-aligned strategy in any of "
            f"the {n_comp} paired strategy comparisons (every outcome, horizon and environment)."
        )
    out.append("")
    if ties:
        out.append(f"No significant difference in {len(ties)} of {n_comp}:")
        out += [f"- {t}" for t in ties]
    else:
        out.append("Every strategy comparison with the culture-aligned strategy is significant.")
    out.append("")
    notes = []
    for env in envs:
        for ab in ABLATIONS:
            name = f"{CULTURE_REF} − {ab.key}"
            if ab.parent != EFFICIENCY_REF or pick(est, environment=env, contrast=name).empty:
                continue
            for o in OUTCOMES:
                r = primary(est, environment=env, horizon="5y", contrast=name, outcome=o)
                if r["ci_upper"] < 0:
                    notes.append(
                        f"- {env}: `{ab.key}` ({ab.label}) beats `{CULTURE_REF}` on {short(o)}: `{name}` = {cell(r)}."
                    )
                elif r["ci_lower"] <= 0 and o != "survival":
                    notes.append(
                        f"- {env}: `{ab.key}` ({ab.label}) ties with `{CULTURE_REF}` on {short(o)}: `{name}` = {cell(r)}."
                    )
    if notes:
        out += ["Efficiency-only strategies changed by one mechanism (ablations, 5 years):", "", *notes, ""]

    # timing: the weekly advantage before and after week 104
    out += ["### How the difference develops over time", ""]
    for env in envs:
        a2, a5 = (arm_values(outcomes, env, h, cul, "cumulative_fcf") for h in ("2y", "5y"))
        b2, b5 = (arm_values(outcomes, env, h, eff, "cumulative_fcf") for h in ("2y", "5y"))
        weeks_late = HORIZONS["5y"] - HORIZONS["2y"]
        early, late = (
            dict(zip(("estimate", "ci_lower", "ci_upper"), paired_t(d)), outcome="weekly_fcf")
            for d in ((a2 - b2) / HORIZONS["2y"], ((a5 - a2) - (b5 - b2)) / weeks_late)
        )
        e2 = primary(est, environment=env, horizon="2y", contrast=fam, outcome="credit_headroom")
        e5 = primary(est, environment=env, horizon="5y", contrast=fam, outcome="credit_headroom")
        out.append(
            f"- {env}: the free-cash-flow difference (culture-aligned − efficiency-only) averages {cell(early)} "
            f"in weeks 1–104 and {cell(late)} in weeks 105–260; the credit-headroom difference is "
            f"{cell(e2)} at week 104 and {cell(e5)} at week 260."
        )
    out.append("")

    # mechanisms
    out += ["### Which mechanisms carry the difference (5 years, cumulative FCF)", ""]
    for env in envs:
        steps = []
        for frm, to, what in PATH:
            name = f"{to} − {frm}"
            if pick(est, environment=env, horizon="5y", contrast=name).empty:
                steps = []
                break
            steps.append(
                (
                    what,
                    primary(
                        est,
                        environment=env,
                        horizon="5y",
                        kind="path",
                        contrast=name,
                        outcome="cumulative_fcf",
                    ),
                )
            )
        if not steps:
            continue
        total = primary(
            est,
            environment=env,
            horizon="5y",
            contrast=f"{CULTURE_REF} − {EFFICIENCY_REF}",
            outcome="cumulative_fcf",
        )
        ranked = sorted(steps, key=lambda s: -abs(s[1]["estimate"]))
        out.append(
            f"- {env}: `{CULTURE_REF} − {EFFICIENCY_REF}` = {cell(total)}; along the path "
            f"`{EFFICIENCY_REF}` → `{CULTURE_REF}` the steps are, largest first:"
        )
        out += [
            f"  - {what}: {cell(r)}" + ("" if significant(r) else " (not significant)") for what, r in ranked
        ]
        culture_off = "bso-culture"
        if not pick(
            est, environment=env, kind="ablation_effect", contrast=f"{culture_off} − {CULTURE_REF}"
        ).empty:
            r = primary(
                est,
                environment=env,
                horizon="5y",
                contrast=f"{culture_off} − {CULTURE_REF}",
                outcome="cumulative_fcf",
            )
            r = {**r, "estimate": -r["estimate"], "ci_lower": -r["ci_upper"], "ci_upper": -r["ci_lower"]}
            out.append(
                f"  - the culture programme as a whole (accountability alignment and socialisation boost, with "
                f"its cost; `{CULTURE_REF} − {culture_off}`): {cell(r)}"
                + ("" if significant(r) else " (not significant)")
            )
        for ab in ABLATIONS:
            if (
                ab.key in {to for _, to, _ in PATH}
                or pick(est, environment=env, contrast=f"{ab.key} − {ab.parent}").empty
            ):
                continue
            r = primary(
                est,
                environment=env,
                horizon="5y",
                contrast=f"{ab.key} − {ab.parent}",
                outcome="cumulative_fcf",
            )
            out.append(f"  - in another order: `{ab.key}` ({ab.label}) changes `{ab.parent}` by {cell(r)}.")
    out.append("")
    for env in envs:
        if pick(est, environment=env, kind="diagnostic").empty:
            continue
        k = primary(
            est,
            environment=env,
            horizon="5y",
            contrast=f"{CULTURE_REF} − {EFFICIENCY_REF}",
            outcome="mean_knowledge",
        )
        if k["ci_lower"] > 0:
            where, effect = "higher than that", "for"
        elif k["ci_upper"] < 0:
            where, effect = "lower than that", "against"
        else:
            where, effect = "not significantly different from that", "neither for nor against"
        out.append(
            f"- {env}: after 5 years the teams' mean knowledge under `{CULTURE_REF}` is {where} under "
            f"`{EFFICIENCY_REF}` ({cell(k)}), so the knowledge → decision mapping works {effect} "
            f"`{CULTURE_REF}` there."
        )
    out.append("")

    # assumptions
    out += ["### How much rests on the knowledge → decision mapping", ""]
    for env in envs:
        d = primary(
            est,
            environment=env,
            horizon="5y",
            contrast=f"{CULTURE_REF} − {EFFICIENCY_REF}",
            outcome="cumulative_fcf",
        )
        bits = []
        for key, _, label in ASSUMPTIONS:
            name = f"{CULTURE_REF}@{key} − {EFFICIENCY_REF}@{key}"
            if pick(est, environment=env, contrast=name).empty:
                continue
            r = primary(est, environment=env, horizon="5y", contrast=name, outcome="cumulative_fcf")
            # difference in differences, paired by firm: how much the assumption moves the gap
            dd = (
                arm_values(outcomes, env, "5y", [f"{CULTURE_REF}@{key}"], "cumulative_fcf")
                - arm_values(outcomes, env, "5y", [f"{EFFICIENCY_REF}@{key}"], "cumulative_fcf")
                - arm_values(outcomes, env, "5y", [CULTURE_REF], "cumulative_fcf")
                + arm_values(outcomes, env, "5y", [EFFICIENCY_REF], "cumulative_fcf")
            )
            shift = dict(zip(("estimate", "ci_lower", "ci_upper"), paired_t(dd)), outcome="cumulative_fcf")
            bits.append(f"if {label}, {cell(r)} (a change of {cell(shift)})")
        if bits:
            out.append(
                f"- {env}: the 5-year cumulative-FCF difference `{CULTURE_REF} − {EFFICIENCY_REF}` is {cell(d)} "
                "with the defaults; " + "; ".join(bits) + "."
            )
    out.append("")

    # programme costs: first-order break-even
    out += ["### Programme costs", ""]
    for env in envs:
        ref = pick(outcomes, environment=env, horizon="5y")
        best = best_at_cash(ref, eff)
        r = primary(
            est, environment=env, horizon="5y", contrast=f"{CULTURE_REF} − {best}", outcome="cumulative_fcf"
        )
        c, e = pick(ref, variant=CULTURE_REF), pick(ref, variant=best)
        weeks = max(c.periods_solvent.mean(), 1.0)
        extra = (c.cum_programme_cost.mean() - e.cum_programme_cost.mean()) / weeks
        if r["ci_lower"] > 0:
            out.append(
                f"- {env}: `{CULTURE_REF}`'s programmes cost {extra:,.0f} MU a week more than those of `{best}` "
                f"(the efficiency-only strategy with the highest 5-year cumulative FCF here). To first order "
                f"(ignoring the effect of costs on the covenant and survival), the 5-year cumulative-FCF "
                f"difference ({cell(r)}) would vanish if the culture programme cost about "
                f"{r['estimate'] / weeks:,.0f} MU a week more ({r['ci_lower'] / weeks:,.0f} to "
                f"{r['ci_upper'] / weeks:,.0f})."
            )
        else:
            out.append(
                f"- {env}: `{CULTURE_REF}`'s programmes cost {extra:,.0f} MU a week more than those of `{best}` "
                f"(the efficiency-only strategy with the highest 5-year cumulative FCF here), and "
                f"`{CULTURE_REF} − {best}` = {cell(r)}: no significant advantage to pay for them."
            )
    out.append("")
    return out


def caveats(envs: list[str], configs: dict) -> list[str]:
    """The illustrative parameters the result depends on, read from the configs that ran."""
    c = orgsim.config_from_dict(configs[envs[0]][CULTURE_REF])
    e = orgsim.config_from_dict(configs[envs[0]][EFFICIENCY_REF])
    cu, mg, mge, f = c.culture, c.management, e.management, c.finance
    env_rows = []
    for env in envs:
        x = orgsim.config_from_dict(configs[env][CULTURE_REF])
        env_rows.append(
            f"`{env}`: demand cv {x.demand.cv}, shock probability {x.demand.shock_prob}/week of size "
            f"{x.demand.shock_size:+} for {x.demand.shock_duration} weeks, supply disruption probability "
            f"{x.supply.disruption_prob}/week ({x.supply.disruption_severity:.0%} for "
            f"{x.supply.disruption_duration} weeks), turbulence p4 {x.culture.p4}"
        )
    lines = [
        "The numbers above are properties of the model with its current, illustrative parameters, not "
        "estimates about real firms: none of these values is calibrated to data yet "
        "(see `docs/model.md` for their sources and ranges). The result depends in particular on:",
        "",
        f"- **Knowledge → decisions** (issue 3, item 2): unit-cost premium κ = culture.cost_sensitivity = "
        f"{cu.cost_sensitivity}, supply-line weight loss λ_β = culture.beta_sensitivity = {cu.beta_sensitivity}, "
        f"forecast noise σ_F = culture.forecast_noise = {cu.forecast_noise}. The assumption checks above "
        "switch these off.",
        f"- **March's learning rates**: p1 = {cu.p1}, p2 = {cu.p2}, turnover p3 = {cu.p3}/week, "
        f"{cu.members} members per team, {cu.dims} dimensions, {cu.burn_in} burn-in periods; "
        f"superior group = top {cu.superior_share:.0%} of teams by accountability score.",
        f"- **Culture programme** (`{CULTURE_REF}`): alignment_rate {mg.alignment_rate}/week toward "
        f"w = {mg.alignment_weight}, socialisation_boost {mg.socialisation_boost}, "
        f"alignment_cost {mg.alignment_cost} MU/week.",
        f"- **BPO**: a project every {mge.bpo_every} weeks closing {mge.bpo_size:.0%} of the remaining gap "
        f"for {mge.bpo_cost} MU, eroding {mge.bpo_erosion:.0%}/week × (1 − maturity); "
        f"target `{mge.bpo_target}` in `{EFFICIENCY_REF}`, `{mg.bpo_target}` in `{CULTURE_REF}`.",
        f"- **BPM**: maturity rate {mge.bpm_rate}/week at {mge.bpm_cost} MU per team-week; focus "
        f"`{mge.bpm_focus}` in `{EFFICIENCY_REF}`, `{mg.bpm_focus}` in `{CULTURE_REF}`; execution noise "
        f"{c.management.execution_noise} × (1 − maturity).",
        f"- **Adaptation**: stock bias hill-climbing every {mg.adapt_every} weeks, step {mg.adapt_step}, "
        f"bias in [{mg.bias_min}, {mg.bias_max}].",
        f"- **Finance**: price {f.price}, initial cash {f.initial_cash:,.0f}, minimum cash {f.min_cash:,.0f}, "
        f"credit limit {f.covenant_multiple} × trailing {f.covenant_window}-week EBITDA, "
        f"{f.grace_periods} weeks' grace, interest {f.interest_rate}/week. Survival and headroom are "
        "sensitive to these: a firm whose trailing EBITDA turns negative loses its credit line.",
        "- **Environments**: " + "; ".join(env_rows) + ".",
        f"- **One firm archetype** (`scenario={SCENARIO}`): one network, one cost structure, firms that "
        "do not compete with each other; demand is exogenous (poor service creates backlog, not lost "
        "customers, unless `costs.unmet=lost_sales`).",
        "- **Definitions**: survival = solvent at the horizon (insolvency is absorbing); an insolvent "
        "firm's credit headroom counts as min(recorded, 0); cumulative FCF includes the weeks before "
        "insolvency and nothing after.",
        "- **Path dependence of the decomposition**: the steps bpo_bpm → bso are taken in one order; "
        "mechanisms interact, so another order gives other step sizes (the other-order ablations show "
        "how much).",
    ]
    return lines


def source_digest() -> str:
    """SHA-256 of the model's code and configs (``orgsim/**/*.py``, ``conf/**/*.yaml``)."""
    h = hashlib.sha256()
    for path in sorted([*REPO.glob("orgsim/**/*.py"), *CONF.glob("**/*.yaml")]):
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def git_state() -> dict:
    """The commit and the model files (``orgsim/``, ``conf/``) that differ from it."""
    commit, modified = source_state(REPO)
    return {"commit": commit, "model_files_modified": modified}


def provenance(args: argparse.Namespace, argv: Sequence[str], timing: dict, git: dict) -> dict:
    # the versions every orgsim result records, and statsmodels for the intervals
    versions = {**package_versions(), "statsmodels": metadata.version("statsmodels")}
    return {
        "command": " ".join(["python", SCRIPT, *map(shlex.quote, argv)]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),  # when the run finished
        "firms": args.firms,
        "seed": args.seed,
        "engine": args.engine,
        "jobs": args.jobs,
        "periods": PERIODS,
        "scenario": SCENARIO,
        "versions": versions,
        "git": git,
        **timing,
    }


def write_report(path: Path, est: pd.DataFrame, outcomes: pd.DataFrame, meta: dict) -> None:
    families = meta["families"]
    envs = meta["environments"]
    eff = [s for s, f in families.items() if f == EFFICIENCY]
    cul = [s for s, f in families.items() if f == CULTURE]
    n = meta["firms"]
    git = meta["git"]
    modified = git.get("model_files_modified") or []
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    n_cells = outcomes.groupby(["environment", "variant"]).ngroups
    crn_note = (
        "verified: every firm's demand path is identical in every cell of its environment"
        if meta["crn_verified"]
        else "**WARNING: demand paths differ between cells of the same environment; paired intervals are not valid**"
    )
    lines = [
        "# Results: culture-aligned against efficiency-only management",
        "",
        f"*Generated by `{SCRIPT}` — do not edit by hand; rerun the command to update.*",
        "",
        md_table(
            ["", ""],
            [
                ["command", f"`{meta['command']}`"],
                ["date", meta["date"]],
                ["seed", f"{meta['seed']} (the same in every cell)"],
                ["firms", f"{n} per cell ({n_cells} cells of {PERIODS} weeks)"],
                ["engine", meta["engine"]],
                [
                    "orgsim",
                    f"{meta['versions'].get('orgsim')}, commit `{git.get('commit')}`"
                    + (
                        f" with uncommitted changes (at the start of the run) to {', '.join(f'`{m}`' for m in modified)}"
                        if modified
                        else ""
                    ),
                ],
                [
                    "model source digest",
                    f"`{meta.get('source_digest', '?')}` (SHA-256 of `orgsim/**/*.py` and `conf/**/*.yaml`)",
                ],
                ["packages", versions],
                [
                    "runtime",
                    (f"{meta['wall_s']:.1f} s" if meta["wall_s"] < 60 else f"{meta['wall_s'] / 60:.1f} min")
                    + f" of simulation with {meta['jobs']} worker process(es), after compilation",
                ],
            ],
            "ll",
        ),
        "",
    ]
    if meta.get("source_changed_during_run"):
        lines += [
            "> **Note:** `orgsim/` or `conf/` changed while this experiment ran. The run used the code and "
            "configs as they were at its start (the digest above, and the configs in `run.json`); the "
            "current files may differ.",
            "",
        ]
    if n < 200:
        lines += [f"> **Note:** {n} firms per cell; issue 3 asks for at least 200.", ""]
    lines += [
        "## Question and method",
        "",
        "Does culture-aligned management (`bso`) give a firm more cash, a better chance of survival and more "
        f"access to capital than efficiency-only management ({', '.join(f'`{s}`' for s in eff)}), after 2 and "
        "5 years, in each environment? The model is not told the answer: strategies are settings of "
        "documented mechanisms (accountability weights, programme targets, information sharing, "
        "socialisation, programme costs), and the family is only a label carried into the results.",
        "",
        f"- **Cells.** Every strategy in `conf/strategy/` × every environment in `conf/environment/` except "
        f"{', '.join(f'`{e}`' for e in sorted(EXCLUDED_ENVIRONMENTS))} (which switches the environment off), "
        f"`scenario={SCENARIO}`, {n} firms per cell, {PERIODS} weeks. Outcomes at week 104 (2 years) and week "
        "260 (5 years) come from the same runs.",
        "- **Outcomes per firm.** Cumulative free cash flow up to the horizon (MU); survival (solvent at the "
        "horizon); credit headroom at the horizon (credit limit − debt, MU; an insolvent firm counts as "
        "having none).",
        f"- **Common random numbers.** Every cell uses seed {meta['seed']}. orgsim's random numbers are keyed "
        "by (seed, firm, mechanism, team, period), so firm *i* meets the same demand, demand shocks and supply "
        "disruptions in every cell, and the same underlying draws for forecast and execution noise (scaled by "
        f"its own knowledge and maturity). Comparisons are therefore paired by firm ({crn_note}). Firms with "
        "different indices are independent, so the per-firm differences are i.i.d. across firms.",
        "- **Family difference.** Culture-aligned − efficiency-only, where the efficiency-only family pools "
        f"the firms of {', '.join(f'`{s}`' for s in eff)} with equal weight. For each firm *i* the paired "
        "difference is d_i = y_culture,i − mean over efficiency-only strategies of y_s,i; its mean equals "
        "the difference of the pooled means.",
        "- **Intervals (95%).** Cumulative FCF and headroom: t interval of the mean paired difference "
        "(`statsmodels` `DescrStatsW.tconfint_mean`), n = firms. Survival: Newcombe's hybrid score interval "
        "for a difference of proportions (`confint_proportions_2indep(method='newcomb')`), with n = firms "
        "per arm. It ignores the pairing, which makes it conservative here (common random numbers correlate "
        "the arms positively), and for the pooled family it counts each firm once (also conservative). "
        "`contrasts.csv` in the output directory also holds the paired Wald interval for survival and, for "
        "the family, the unpaired Welch interval over the pooled firms (`CompareMeans`).",
        "- **Bold** marks intervals that exclude zero. No correction for multiple comparisons is applied; "
        "with this many intervals a few borderline ones are expected by chance.",
        "",
        "## Findings",
        "",
        "*Written by the script from the estimates below.*",
        "",
        *findings(est, outcomes, families, envs),
        "## Family difference: culture-aligned − efficiency-only",
        "",
        contrast_table(est, envs, "family", list(HORIZONS)),
        "",
        f"## Each strategy against `{', '.join(cul)}` (paired by firm)",
        "",
        "Rows `efficiency_only − none` compare the efficiency-only family with the baseline without "
        "programmes.",
        "",
        contrast_table(est, envs, "strategy", list(HORIZONS)),
        "",
        "## Levels by strategy",
        "",
        "Means with 95% intervals (t for money, Wilson for survival); `none` is the baseline without "
        "programmes, for context.",
        "",
    ]
    for h in HORIZONS:
        lines += [f"### After {HORIZON_NAMES[h]}", "", levels_table(outcomes, families, envs, h), ""]
    lines += [
        "## What the firms look like after 5 years",
        "",
        "Means over firms (team knowledge is March's score of the teams' beliefs, frozen at insolvency; "
        "fill rate over solvent weeks; money cumulative over 5 years).",
        "",
        diagnostics_table(outcomes, families, envs),
        "",
        "## Why: ablations (5 years)",
        "",
        "Each ablation switches one mechanism on top of a strategy: "
        + "; ".join(f"`{a.key}` = {a.label} (`{' '.join(a.overrides)}`)" for a in ABLATIONS)
        + ". The first column is the ablation's paired effect on its parent strategy; the second is the "
        "culture-aligned − efficiency-only difference once the ablation replaces its parent.",
        "",
    ]
    for o, name in OUTCOMES.items():
        lines += [f"### {name[0].upper() + name[1:]}", "", ablation_table(est, envs, o), ""]
    lines += [
        f"### Decomposition of `{CULTURE_REF} − {EFFICIENCY_REF}` into mechanisms",
        "",
        f"`{CULTURE_REF}` differs from `{EFFICIENCY_REF}` by four switches; taking them one at a time "
        "gives paired steps that add up exactly to the total (their intervals do not).",
        "",
        path_table(est, envs),
        "",
        "## Assumption checks",
        "",
        f"The same comparison `{CULTURE_REF} − {EFFICIENCY_REF}` with parts of the knowledge → decision "
        "mapping switched off in both arms.",
        "",
        assumption_table(est, envs),
        "",
        "## Caveats",
        "",
        *caveats(envs, meta["configs"]),
        "",
        "## Reproduce",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"Per-firm outcomes are written to `{meta['out_display']}` (`outcomes.parquet`, `outcomes.csv.gz`), "
        "every estimate to `contrasts.csv`, and the run's provenance to `run.json`; `--report-only` "
        "rebuilds this page from them. See `experiments/README.md`.",
        "",
    ]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def crn_verified(outcomes: pd.DataFrame) -> bool:
    """Every firm sees the same demand in every cell of its environment."""
    per_env = outcomes[outcomes.horizon == "5y"].groupby(["environment", "firm"]).cum_demand.nunique()
    return bool((per_env == 1).all())


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--firms", type=int, default=200, help="firms per cell (default 200)")
    p.add_argument(
        "--engine", choices=("mesa", "numba"), default="mesa", help="simulation engine (default mesa)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory (default {DEFAULT_OUT.relative_to(REPO)})",
    )
    p.add_argument("--seed", type=int, default=0, help="root seed, the same in every cell (default 0)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes over cells (default: CPUs for mesa, 1 for numba); results do not depend on it",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=DEFAULT_REPORT,
        help=f"Markdown report (default {DEFAULT_REPORT.relative_to(REPO)})",
    )
    p.add_argument(
        "--environments", nargs="+", default=None, help="environments to run (default: all markets)"
    )
    p.add_argument("--no-ablations", action="store_true", help="skip the ablations and assumption checks")
    p.add_argument(
        "--report-only", action="store_true", help="rebuild the report from --out without simulating"
    )
    args = p.parse_args(argv)
    if args.firms < 2:
        p.error("--firms must be at least 2")
    if args.jobs is None:
        args.jobs = (os.cpu_count() or 1) if args.engine == "mesa" else 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        out_display = str(out.resolve().relative_to(REPO))
    except ValueError:
        out_display = str(out)

    if args.report_only:
        outcomes = pd.read_parquet(out / "outcomes.parquet")
        est = pd.read_csv(out / "contrasts.csv")
        meta = json.loads((out / "run.json").read_text())
        if "cumulative_fcf" not in set(est.outcome):
            log(
                f"error: {out_display}/contrasts.csv was written by an older version of this script; rerun it"
            )
            return 2
    else:
        families, envs = discover(args.environments)
        log(f"strategies: {families}; environments: {envs}")
        missing = {CULTURE_REF, EFFICIENCY_REF} - set(families)
        variants = [Variant(key=s, strategy=s) for s in families]
        if not args.no_ablations and not missing:
            variants += [*ABLATIONS, *assumption_variants()]
        elif missing:
            log(f"strategies {sorted(missing)} not found: skipping ablations and assumption checks")
        digest_start, git_start = source_digest(), git_state()
        cells = len(envs) * len(variants)
        jobs = max(1, min(args.jobs, cells))
        log(f"{cells} cells × {args.firms} firms × {PERIODS} weeks, engine={args.engine}, jobs={jobs}")
        try:
            result = run_comparison(variants, envs, args.firms, args.seed, args.engine, jobs)
        except orgsim.ConfigError as exc:
            log(f"error: {exc}")
            return 2
        args.jobs = jobs
        timing = {
            "cell_wall_s": {k: round(v, 2) for k, v in result.timings["cell_wall_s"].items()},
            "wall_s": round(result.timings["simulation_s"], 1),
        }
        meta = provenance(args, argv, timing, git_start)
        meta.update(families=families, environments=envs, source_digest=digest_start)
        meta["configs"] = {
            env: {v.key: result.configs[(env, v.key)].to_dict() for v in variants} for env in envs
        }
        meta["source_changed_during_run"] = source_digest() != digest_start
        if meta["source_changed_during_run"]:
            log("note: orgsim/ or conf/ changed during the run; the run used the versions at its start")
        outcomes = outcome_table(result, variants)
        for col in ("environment", "variant", "kind", "overrides", "strategy", "family", "horizon"):
            outcomes[col] = outcomes[col].astype(str)
        # each file is renamed into place when complete, run.json last
        atomic_write(out / "outcomes.parquet", lambda tmp: outcomes.to_parquet(tmp, index=False))
        atomic_write(
            out / "outcomes.csv.gz", lambda tmp: outcomes.to_csv(tmp, index=False, compression="gzip")
        )
        est = estimate_all(result, meta["families"], meta["environments"])
        atomic_write(out / "contrasts.csv", lambda tmp: est.to_csv(tmp, index=False))
    meta["crn_verified"] = crn_verified(outcomes)
    meta["out_display"] = out_display
    if not meta["crn_verified"]:
        log("WARNING: demand paths differ between cells of one environment; paired intervals are invalid")
    run_json = json.dumps({k: v for k, v in meta.items() if k != "out_display"}, indent=2)
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(run_json))
    write_report(args.report, est, outcomes, meta)
    log(f"wrote {args.report} and {out_display}/ (outcomes, contrasts.csv, run.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
