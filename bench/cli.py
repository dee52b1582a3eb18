"""Command line: ``python -m bench {run,list,runs,compare,export,report,study}``. User errors print a message, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from bench.cliargs import add_split_args, parse_params, split_options
from bench.errors import ConfigError, UserError


def _device_arg(text: str) -> str:
    from pipelines.params import DEVICE

    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, cpu, cuda, cuda:N or mps")
    return text


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--plugin", action="append", metavar="FILE.py|MODULE",
                   help="import code that registers your own pipelines (repeatable; also CVBENCH_PLUGINS and the "
                        "'cvbench.pipelines' entry points)")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run datasets × pipelines × seeds, one MLflow run each")
    r.add_argument("--suite", help="suite name (bench/suites/NAME.yaml) or path to a YAML file")
    r.add_argument("--dataset", "-d", action="append", help="dataset name or folder:PATH (repeatable)")
    r.add_argument("--pipeline", "-p", action="append", help="pipeline name or wildcard (repeatable)")
    r.add_argument("--seed", "-s", action="append", type=int, help="seed (repeatable; default 0)")
    r.add_argument("--param", action="append", metavar="[PIPELINE.]KEY=VALUE",
                   help="override a pipeline parameter, e.g. cnn-small.epochs=3 (repeatable)")
    r.add_argument("--force", action="store_true", help="rerun jobs that already have a FINISHED run")
    r.add_argument("--data-dir", help="where downloaded datasets live (default: $CVBENCH_DATA, else ~/.cache/cvbench/data)")
    r.add_argument("--no-table", action="store_true", help="do not print the comparison table at the end")
    v = r.add_mutually_exclusive_group()
    v.add_argument("--quiet", "-q", action="store_true", help="print only warnings, failures and the summary")
    v.add_argument("--verbose", "-v", action="store_true", help="also print each job's resolved parameters")
    r.add_argument("--dry-run", action="store_true",
                   help="list the jobs, and which would be skipped as done, without running anything")
    x = r.add_argument_group("execution (where jobs run)")
    x.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this machine (in-process, or a process pool with --jobs); ray: Ray tasks")
    x.add_argument("--jobs", "-j", type=int, help="parallel jobs (local pool size; local Ray cluster CPUs)")
    x.add_argument("--isolate", action="store_true",
                   help="run each job in a fresh process of its own, so that nothing the process keeps from earlier "
                        "jobs can move its costs (the dataset is then read from its disk cache by each job)")
    x.add_argument("--ray-address", help="existing Ray cluster, e.g. ray://head:10001 (default: start one here)")
    x.add_argument("--device", type=_device_arg, default=None,
                   help="auto, cpu, cuda, cuda:N or mps for every network (default: each pipeline's own, auto)")
    x.add_argument("--threads", type=int, default=None,
                   help="CPU threads for BLAS, PyTorch and feature extraction (default: every core)")
    x.add_argument("--retries", type=int, default=0, help="resubmit a failed job up to N times (default 0)")
    x.add_argument("--memory-budget-mb", type=float,
                   help="datasets whose decoded size exceeds this are memory-mapped and processed in chunks "
                        "(default: CVBENCH_MEMORY_BUDGET_MB, else unlimited)")
    add_split_args(r)

    ls = sub.add_parser("list", help="print the pipeline catalogue")
    ls.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'hog-*'")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.add_argument("--family", choices=["classical", "scratch", "transfer"])
    ls.add_argument("--all", action="store_true", help="include unavailable pipelines (with the reason)")
    ls.add_argument("--datasets", action="store_true", help="list datasets instead")

    rs = sub.add_parser("runs", help="the runs in the store, one line each, newest first")
    rs.add_argument("--dataset", "-d", action="append", help="only this dataset (repeatable; default: all)")
    rs.add_argument("--pipeline", "-p", default="*", help="pipeline name or wildcard (default: all)")
    rs.add_argument("--status", help="FINISHED, FAILED, RUNNING or KILLED (default: any)")
    rs.add_argument("--json", action="store_true", help="print a JSON array")

    cp = sub.add_parser("compare", help="two runs' params, metrics and tags side by side (differences only)")
    cp.add_argument("runs", nargs=2, metavar="RUN", help="run id (or 8+ character prefix) or dataset/pipeline/seed")
    cp.add_argument("--all", action="store_true", help="show every row, not only the differences")

    ex = sub.add_parser("export", help="the runs the report counts (latest FINISHED per dataset, split, "
                        "configuration, hardware, seed)")
    ex.add_argument("--format", choices=["csv", "json", "md", "latex"], default="csv",
                    help="output format (default csv); counts stay integers, times are ISO 8601")
    ex.add_argument("--dataset", "-d", action="append", help="only this dataset (repeatable; default: all)")
    ex.add_argument("--out", "-o", help="output file (default: standard output)")

    rp = sub.add_parser("report", help="report.md, self-contained report.html, CSV/LaTeX tables from tracked runs")
    rp.add_argument("--dataset", "-d", action="append", help="only this dataset (repeatable; default: all)")
    rp.add_argument("--out", "-o", default=None, help="output directory (default <results>/report)")
    from bench.studies.cli import add_study_parser

    add_study_parser(sub)  # study data-efficiency|robustness|stats|gallery
    from bench.reproduce import add_reproduce_parser

    add_reproduce_parser(sub)  # reproduce: the published reference tables, measured
    return p


def _cmd_list(a: argparse.Namespace) -> int:
    if a.datasets:
        from bench.datasets import dataset_names
        from bench.datasets.base import dataset_info

        rows = [{"name": n, **{k: v for k, v in dataset_info(n).items() if k != "loader"}} for n in dataset_names()]
        if a.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                print(f"{r['name']:16s} {r['kind']:9s} {r['description']}")
            print("folder:PATH      folder    any ImageFolder directory or .zip (train/ and test/ optional)")
        return 0
    from pipelines.registry import get_spec, list_pipelines

    names = list_pipelines(a.pattern, family=a.family, include_unavailable=a.all or a.json)
    specs = [get_spec(n) for n in names]
    if not specs:
        print(f"no pipeline matches {a.pattern!r}" + (f" in family {a.family}" if a.family else "")
              + " (`python -m bench list` prints them all; --all adds unavailable ones)", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps([s.as_dict() for s in specs], indent=2, default=str))
        return 0
    print(f"{'name':34s} {'family':9s} {'features':14s} {'classifier':10s} description")
    for s in specs:
        desc = s.description if s.available else f"UNAVAILABLE: {s.unavailable_reason}"
        print(f"{s.name:34s} {s.family:9s} {s.features:14s} {s.classifier:10s} {desc}")
    return 0


def _jobs(a: argparse.Namespace) -> list:
    from fnmatch import fnmatchcase

    from bench.jobs import Job
    from bench.suites import load_suite
    from pipelines.registry import expand

    suite = load_suite(a.suite) if a.suite else None
    datasets = a.dataset or (suite.datasets if suite else None)
    if not datasets:
        raise ConfigError("no dataset given: use --dataset NAME (e.g. mnist5k) or --suite quick")
    entries = [(p, {}) for p in a.pipeline] if a.pipeline else (suite.pipelines if suite else None)
    if not entries:
        raise ConfigError("no pipeline given: use --pipeline NAME (see `python -m bench list`) or --suite quick")
    if a.pipeline and suite:  # suite budgets still apply to pipelines named on the command line
        entries = [(p, {k: v for sp, params in suite.pipelines if fnmatchcase(p, sp) or p == sp
                        for k, v in params.items()}) for p in a.pipeline]
    seeds = a.seed or (suite.seeds if suite else [0])
    split, image_size = split_options(a, suite.options if suite else {})
    overrides = parse_params(a.param)
    from pipelines.registry import get_spec

    jobs, used = [], set()
    for ds in datasets:
        for pat, params in entries:
            for name in expand([pat]):
                p = dict(params)
                accepted = get_spec(name).defaults
                for target, kv in overrides.items():
                    if target == "*":  # a bare key=value applies to every pipeline that has that parameter
                        p.update({k: v for k, v in kv.items() if k in accepted})
                        used.update(k for k in kv if k in accepted)
                    elif fnmatchcase(name, target):
                        p.update(kv)
                        used.update(kv)
                if getattr(a, "device", None) and "device" in accepted:
                    p["device"] = a.device
                for s in seeds:
                    jobs.append(Job(ds, name, s, p, split, image_size))
    unused = sorted({k for kv in overrides.values() for k in kv} - used)
    if unused:
        raise ConfigError(f"--param {', '.join(unused)}: no selected pipeline has such a parameter "
                          "(see `python -m bench list --json` for each pipeline's params)")
    from pipelines.training import device_unavailable

    for j in jobs:
        try:
            j.identity()  # validates parameter names, types and ranges now, before anything runs
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None
        device = j.params.get("device")
        if isinstance(device, str) and (reason := device_unavailable(device)):
            raise ConfigError(f"{j.pipeline}: {reason}")
    return jobs


def _cmd_run(a: argparse.Namespace) -> int:
    if not a.quiet:
        return _run_threads(a)
    with mock.patch.dict(os.environ, {"CVBENCH_PROGRESS": "0"}):  # --quiet: no bars (cvbench_util.progress)
        return _run_threads(a)


def _run_threads(a: argparse.Namespace) -> int:
    if a.threads is None:
        return _run(a)
    if a.threads < 1:
        raise ConfigError(f"--threads {a.threads}: must be at least 1")
    from threadpoolctl import threadpool_limits

    # CVBENCH_THREADS is read by the training loop, extraction and workers; restored afterwards
    with mock.patch.dict(os.environ, {"CVBENCH_THREADS": str(a.threads)}), threadpool_limits(a.threads):
        return _run(a)


def _run(a: argparse.Namespace) -> int:
    from bench.report.table import print_table
    from bench.runner import run_grid
    from bench.tracking import Tracker

    jobs = _jobs(a)
    tracker = Tracker()
    t0 = time.perf_counter()
    print(f"cvbench: {len(jobs)} job(s) → {tracker.uri}", flush=True)
    from bench.executors import make_executor

    executor = make_executor(a.executor, jobs=a.jobs, address=a.ray_address, retries=a.retries,
                             isolate=a.isolate)
    if a.memory_budget_mb is not None:
        os.environ["CVBENCH_MEMORY_BUDGET_MB"] = str(a.memory_budget_mb)  # read by workers' loaders too
    def log(msg: str) -> None:
        if not a.quiet or msg.startswith(("FAIL", "warning", "error")):
            print(msg, flush=True)

    if a.verbose:
        for j in jobs:
            log(f"job   {j.run_name} " + json.dumps(j.resolved_params(), default=str))
    results = run_grid(jobs, tracker=tracker, force=a.force, data_dir=a.data_dir, log=log, executor=executor,
                       dry_run=a.dry_run)
    if a.dry_run:
        planned = sum(r.status == "PLANNED" for r in results)
        print(f"\ndry run: {planned} job(s) would run, {len(results) - planned} skipped as done; nothing was run")
        return 0
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(f"\n{len(results)} job(s) in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())))
    for r in results:
        if r.status == "FAILED":
            print(f"  failed: {r.job.run_name}: {(r.error or '').splitlines()[0] if r.error else ''}")
    if not a.no_table:
        datasets = sorted({j.dataset for j in jobs})
        print("\n" + print_table(tracker, datasets, sorted({j.pipeline for j in jobs})))
    print(f"\nresults: tracking store {tracker.uri}\n         browse with `make ui`; export with "
          "`python -m bench export`; report with `make report`")
    return 1 if counts.get("FAILED") else 0


def _cmd_runs(a: argparse.Namespace) -> int:
    from bench.report.runs import format_runs, list_runs
    from bench.tracking import Tracker

    df = list_runs(Tracker(), a.dataset, a.pipeline, a.status)
    print(df.to_json(orient="records", indent=2) if a.json else format_runs(df))
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from bench.report.runs import compare_runs, format_compare
    from bench.tracking import Tracker

    print(format_compare(compare_runs(Tracker(), *a.runs, all_rows=a.all)))
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from bench.report.export import format_export, latest_runs

    df = latest_runs(datasets=a.dataset)
    if df.empty:
        where = f"dataset(s) {', '.join(a.dataset)}" if a.dataset else "any dataset"
        print(f"no FINISHED runs for {where} in the store (`python -m bench runs` lists what it holds)",
              file=sys.stderr)
        return 1
    text = format_export(df, a.format)
    if a.out:
        Path(a.out).write_text(text)
        print(f"wrote {len(df)} row(s) to {a.out}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from bench.report.build import build_report, terminal_summary

    res = build_report(datasets=a.dataset, out=a.out)
    if res.out is not None:
        print(terminal_summary(res) + "\n")
    print(res.message)
    return 0


def _cmd_study(a: argparse.Namespace) -> int:
    from bench.studies.cli import run_study

    return run_study(a)


def _cmd_reproduce(a: argparse.Namespace) -> int:
    from bench.reproduce import run_reproduce

    return run_reproduce(a)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, treated like Ctrl-C so open runs end KILLED."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from bench.plugins import load_plugins

        load_plugins(args.plugin)
        return {"run": _cmd_run, "list": _cmd_list, "runs": _cmd_runs, "compare": _cmd_compare,
                "export": _cmd_export, "report": _cmd_report, "study": _cmd_study,
                "reproduce": _cmd_reproduce}[args.cmd](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (KeyError, RuntimeError) as e:  # the registry's own errors are user errors too
        from pipelines.registry import PipelineUnavailableError, UnknownPipelineError

        if isinstance(e, UnknownPipelineError | PipelineUnavailableError):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("\ninterrupted: open runs were marked KILLED; rerun the same command to resume.", file=sys.stderr)
        return 130
