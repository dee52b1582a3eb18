"""``python -m bench study {data-efficiency,robustness,stats,gallery}``: parser and commands.

Kept here so :mod:`bench.cli` only registers the subcommand; heavy imports happen inside the commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.cliargs import add_split_args, parse_params, split_options
from bench.errors import ConfigError


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[-60:]


def add_study_parser(sub: Any) -> None:
    st = sub.add_parser("study", help="studies: data-efficiency, robustness, stats (significance), gallery")
    ss = st.add_subparsers(dest="study", required=True)

    def common(p: argparse.ArgumentParser, many_datasets: bool = True) -> None:
        p.add_argument("--dataset", "-d", action="append", required=True, help="dataset (repeatable)")
        p.add_argument("--pipeline", "-p", action="append", help="pipeline name or wildcard (repeatable)")
        p.add_argument("--param", action="append", metavar="[PIPELINE.]KEY=VALUE",
                       help="override a pipeline parameter, e.g. cnn-small.epochs=3 (repeatable)")
        p.add_argument("--data-dir", help="where downloaded datasets live")
        p.add_argument("--out", help="output directory (default <results>/studies/<study>/<dataset>)")
        p.add_argument("--dry-run", action="store_true",
                       help="list the jobs, and which are already done, without running or recording anything")
        add_split_args(p)

    de = ss.add_parser("data-efficiency", help="accuracy vs training images per class; deep/classical crossover")
    common(de)
    de.add_argument("--per-class", default="5,10,20,50,100,200,all", help="sizes, e.g. 5,10,20,50,100,200,all")
    de.add_argument("--repeats", type=int, default=3, help="repeats (seeded subsets) at small sizes (default 3)")
    de.add_argument("--repeat-below", type=int, default=100, help="repeat sizes below this (default 100)")
    de.add_argument("--min-steps", type=int, help="networks: raise epochs so every size gets at least N optimiser "
                    "steps (default: the pipelines' own epoch budgets)")
    de.add_argument("--max-epochs", type=int, default=50, help="cap on the epochs --min-steps may ask for (default 50)")
    de.add_argument("--force", action="store_true", help="rerun jobs that already have a FINISHED run")

    rb = ss.add_parser("robustness", help="trained pipelines on corrupted test copies (no retraining)")
    common(rb)
    rb.add_argument("--corruption", action="append", help="corruption name (repeatable; default: all 14)")
    rb.add_argument("--severity", action="append", type=int, help="severity 1..5 (repeatable; default: all)")
    rb.add_argument("--seed", type=int, default=0, help="fit and corruption seed (default 0)")
    rb.add_argument("--force", action="store_true", help="redo pipelines that already have a FINISHED run")

    sg = ss.add_parser("stats", help="McNemar + bootstrap CIs: best classical vs best deep, or any two")
    sg.add_argument("--dataset", "-d", action="append", required=True)
    sg.add_argument("--a", help="pipeline A (default: best classical)")
    sg.add_argument("--b", help="pipeline B (default: best deep)")
    sg.add_argument("--run-a", help="compare these two run ids directly")
    sg.add_argument("--run-b")
    sg.add_argument("--seed", type=int, help="use runs of this seed (default: the first shared one)")
    sg.add_argument("--json", action="store_true")

    ga = ss.add_parser("gallery", help="what each pipeline sees: HOG, SIFT, BoVW words, filters, Grad-CAM, mistakes")
    common(ga)
    ga.add_argument("--seed", type=int, default=0)
    ga.add_argument("--n-images", type=int, default=8, help="example images per panel (default 8)")


def run_study(a: argparse.Namespace) -> int:
    from bench.tracking import Tracker, results_dir

    tracker = Tracker()
    if a.study == "stats":
        from bench.studies.statistics import best_pair_comparison, compare_runs, format_comparison

        rc = 0
        for ds in a.dataset:
            if a.run_a and a.run_b:
                r = {**compare_runs(tracker, a.run_a, a.run_b), "dataset": ds, "a": a.run_a[:8], "b": a.run_b[:8]}
            else:
                r = best_pair_comparison(tracker, ds, a.a, a.b, a.seed)
            if r is None:
                print(f"{ds}: no comparable pair of FINISHED runs (need a classical and a deep run on the same split "
                      "and seed; run `python -m bench run` first)")
                rc = 1
                continue
            print(json.dumps(r, indent=2, default=str) if a.json else format_comparison(r))
        return rc

    from fnmatch import fnmatchcase

    from pipelines.registry import expand

    if not a.pipeline:
        raise ConfigError("no pipeline given: use --pipeline NAME (repeatable, wildcards allowed)")
    pipelines = expand(a.pipeline)
    overrides = parse_params(a.param)
    params = {p: {k: v for t, kv in overrides.items() if t == "*" or fnmatchcase(p, t) for k, v in kv.items()}
              for p in pipelines}
    split, image_size = split_options(a, {})
    if a.study == "data-efficiency":
        from bench.studies.data_efficiency import parse_sizes, run_data_efficiency

        if a.train_per_class is not None:
            raise ConfigError("--train-per-class is set by the study; use --per-class")
        try:
            sizes = parse_sizes(a.per_class)
        except ValueError as e:
            raise ConfigError(f"--per-class: {e}") from None
        rc = 0
        for ds in a.dataset:
            out = Path(a.out) / _safe(ds) if a.out else results_dir() / "studies" / "data-efficiency" / _safe(ds)
            res = run_data_efficiency(ds, pipelines, sizes=sizes, repeats=a.repeats, repeat_below=a.repeat_below,
                                      split=split, image_size=image_size, params=params, tracker=tracker,
                                      force=a.force, data_dir=a.data_dir, out_dir=out, min_steps=a.min_steps,
                                      max_epochs=a.max_epochs, dry_run=a.dry_run,
                                      log=lambda m: print(m, flush=True))
            if a.dry_run:
                print(f"\ndry run: {ds}: {len(res['planned'])} job(s) would run, {len(res['skipped'])} skipped as "
                      "done; nothing was run")
            elif not res["summary"].empty:
                print("\n" + (out / "summary.md").read_text())
                print(f"wrote {out}/ (data_efficiency.png, summary.csv, curve.csv, crossover.json)")
            else:
                rc = 1
        return rc
    if a.study == "robustness":
        from bench.studies.results import robustness_markdown, robustness_table
        from bench.studies.robustness import CORRUPTIONS, SEVERITIES, run_robustness

        sev = a.severity or list(SEVERITIES)
        if any(not 1 <= s <= 5 for s in sev):
            raise ConfigError("--severity must be in 1..5")
        for ds in a.dataset:
            out = Path(a.out) / _safe(ds) if a.out else results_dir() / "studies" / "robustness" / _safe(ds)
            df = run_robustness(ds, pipelines, seed=a.seed, split=split, image_size=image_size, params=params,
                                corruptions=a.corruption or list(CORRUPTIONS), severities=sev, tracker=tracker,
                                force=a.force, data_dir=a.data_dir, out_dir=out, log=lambda m: print(m, flush=True),
                                dry_run=a.dry_run)
            if a.dry_run:
                planned = int((df["status"] == "PLANNED").sum())
                print(f"\ndry run: {ds}: {planned} pipeline(s) would be evaluated, {len(df) - planned} skipped as "
                      "done; nothing was run")
                continue
            print("\n" + robustness_markdown(robustness_table(df), ds))
            print(f"wrote {out}/ (robustness_heatmap.png, robustness_table.csv, robustness.csv, robustness.md)")
        return 0
    if a.study == "gallery":
        from bench.studies.gallery import make_gallery

        for ds in a.dataset:
            out = Path(a.out) / _safe(ds) if a.out else results_dir() / "studies" / "gallery" / _safe(ds)
            paths = make_gallery(ds, pipelines, out, seed=a.seed, split=split, image_size=image_size, params=params,
                                 n_images=a.n_images, data_dir=a.data_dir, tracker=tracker,
                                 log=lambda m: print(m, flush=True), dry_run=a.dry_run)
            if a.dry_run:
                print(f"\ndry run: {ds}: nothing was fitted, written or recorded")
                continue
            print(f"wrote {len(paths)} image(s) to {out}/")
        return 0
    raise ConfigError(f"unknown study {a.study!r}")
