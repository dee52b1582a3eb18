"""``make screenshots``: the README's images, taken in headless Chromium from the real runs in the store —
the report (``docs/report.png``) and MLflow's compare page for two runs (``docs/mlflow-compare.png``).

    python -m bench.screenshots [--runs DATASET/PIPELINE/SEED DATASET/PIPELINE/SEED] [--out docs]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.browser import full_page_png, headless
from bench.report.build import build_report
from bench.report.runs import resolve_run
from bench.tracking import Tracker

DEFAULT_RUNS = ("mnist5k/cnn-small/0", "mnist5k/hog-linsvm/0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_ui(uri: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host",
                             "127.0.0.1", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):  # bounded wait for the server on the loopback address
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"mlflow ui did not start on port {port}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs=2, default=DEFAULT_RUNS, help="the two runs of the compare page "
                    f"(default: {' '.join(DEFAULT_RUNS)})")
    ap.add_argument("--out", default="docs", help="where the PNGs go (default docs)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = Tracker()
    res = build_report(tracker)
    if res.out is None:
        print(res.message, file=sys.stderr)
        return 1
    ids = [resolve_run(tracker, r) for r in a.runs]
    exp_ids = sorted({tracker.client.get_run(i).info.experiment_id for i in ids})
    driver = headless()
    port = _free_port()
    server = _serve_ui(tracker.uri, port)
    try:
        driver.get((res.out / "report.html").as_uri())
        full_page_png(driver, str(out / "report.png"), max_height=2400)
        driver.set_window_size(1400, 1100)
        driver.get(f"http://127.0.0.1:{port}/#/compare-runs?runs={json.dumps(ids)}&experiments={json.dumps(exp_ids)}")
        time.sleep(8)  # the single-page app renders its plots after loading the runs
        driver.save_screenshot(str(out / "mlflow-compare.png"))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    print(f"wrote {out / 'report.png'} and {out / 'mlflow-compare.png'} ({' vs '.join(a.runs)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
