"""The one training loop for every network trained here, and :class:`NetClassifier`, its scikit-learn face.

Read it in one sitting (airbench-style): images stay ``uint8`` on the device (when they fit), each batch is
gathered, augmented (:mod:`pipelines.augment`) and normalised there; SGD-Nesterov or AdamW with a OneCycle or
cosine schedule and decoupled weight decay (none on biases/norms); optional label smoothing; bf16 autocast
and channels_last on CUDA, optional ``torch.compile``; all CPU cores and deterministic kernels on CPU; early
stopping on validation accuracy that restores the best epoch's weights; an epoch and/or time budget.
Per-epoch records (``train_loss``, ``val_accuracy``, ``lr``, ``epoch_time_s``, ``img_per_s``) go to an
optional ``callback(epoch, record)`` (the harness logs them; this module knows nothing about tracking).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import joblib
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from cvbench_util.progress import progress
from pipelines.augment import augment_batch
from pipelines.base import check_images
from pipelines.nets import build_net

Prep = Callable[[torch.Tensor], torch.Tensor]  # uint8 (N, C, H, W) batch on the device → network input
DEVICE_DATA_MAX_BYTES = 4 << 30  # datasets up to this size live on the accelerator for the whole run


def device_unavailable(device: str) -> str | None:
    """Why ``device`` (auto, cpu, cuda, cuda:N, mps) cannot be used here, or ``None`` when it can."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            return f"device {device!r}: no CUDA GPU is visible to PyTorch here (use --device cpu or auto)"
        if index and int(index) >= n:
            return f"device {device!r}: only {n} CUDA GPU(s) here (cuda:0 to cuda:{n - 1})"
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "device 'mps': Apple's Metal backend is not available here (use --device cpu or auto)"
    return None


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if reason := device_unavailable(device):
        raise ValueError(reason)
    return torch.device(device)


def use_all_cores() -> None:
    """Let intra-op parallelism use every core the process may run on (torch defaults to physical cores),
    unless the user capped threads with ``CVBENCH_THREADS`` (``--threads``) or ``OMP_NUM_THREADS`` (on a
    shared, oversubscribed machine one thread per process can be several times faster than two)."""
    if os.environ.get("CVBENCH_THREADS"):
        torch.set_num_threads(int(os.environ["CVBENCH_THREADS"]))
        return
    if os.environ.get("OMP_NUM_THREADS"):
        return
    n = joblib.effective_n_jobs(-1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Inside the block, torch and numpy draw from ``seed``; on CPU, deterministic kernels. Everything is
    restored after (torch's and numpy's global generators included), so no job's randomness depends on
    what ran before it in the same process, and no job changes what runs after it."""
    prev, prev_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    np_state = np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            if device.type == "cpu":
                torch.use_deterministic_algorithms(True, warn_only=True)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # GPU runs favour speed; seeds still fix init and batches
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev, warn_only=prev_warn)
            if seed is not None:
                np.random.set_state(np_state)


def to_tensor(X: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(N, H, W, C)`` uint8 → ``(N, C, H, W)`` uint8 on ``device`` (normalisation happens per batch)."""
    t = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    device = torch.device(device)
    if device.type == "cuda" and t.numel() > DEVICE_DATA_MAX_BYTES:
        return t.pin_memory()  # too big for the device: batches are copied over asynchronously
    return t.to(device)


def channel_stats(X: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``uint8`` images ``(N, H, W, C)`` scaled to [0, 1], as ``(1, C, 1, 1)``
    tensors; float64 chunks, so no float copy of the whole set is made."""
    n, h, w, c = X.shape
    s1, s2 = np.zeros(c), np.zeros(c)
    for i in range(0, n, 4096):
        b = X[i:i + 4096].reshape(-1, c).astype(np.float64) / 255.0
        s1 += b.sum(0)
        s2 += (b * b).sum(0)
    m = s1 / (n * h * w)
    sd = np.sqrt(np.maximum(s2 / (n * h * w) - m * m, 1e-6))
    return (torch.tensor(m, dtype=torch.float32, device=device).view(1, c, 1, 1),
            torch.tensor(sd, dtype=torch.float32, device=device).view(1, c, 1, 1))


def make_optimizer(groups: list[dict[str, Any]], optimizer: str, lr: float, weight_decay: float,
                   schedule: str, total_steps: int):
    """Optimizer + per-step scheduler. ``groups``: ``{"params": [...], "lr_mult": float}``; weight decay
    applies to weights (ndim > 1) only, never to biases and norm parameters."""
    pg = []
    for g in groups:
        params = [p for p in g["params"] if p.requires_grad]
        mult = g.get("lr_mult", 1.0)
        pg.append({"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay, "lr": lr * mult})
        pg.append({"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "lr": lr * mult})
    pg = [g for g in pg if g["params"]]
    if optimizer == "sgd":
        opt = torch.optim.SGD(pg, lr=lr, momentum=0.9, nesterov=True)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(pg, lr=lr)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose sgd or adamw")
    if schedule == "onecycle":
        # OneCycleLR divides by its warm-up length (0.25·steps − 1): keep that ≥ 1 for very short runs.
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in pg],
                                                    total_steps=max(total_steps, 8), pct_start=0.25)
    elif schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    elif schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose onecycle, cosine or constant")
    return opt, sched


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_bf16(precision: str, device: torch.device) -> bool:
    """``precision`` → use bf16 autocast? ``bf16`` / ``fp32``; ``cuda-bf16``: bf16 on CUDA only (where native
    bf16 does not pay on a CPU, e.g. depthwise convolutions' backward); ``auto``: bf16 on CUDA and on CPUs
    with native bf16."""
    if precision not in ("auto", "cuda-bf16", "bf16", "fp32"):
        raise ValueError(f"precision {precision!r}: choose auto, cuda-bf16, bf16 or fp32")
    if precision in ("auto", "cuda-bf16"):
        return device.type == "cuda" or (precision == "auto" and device.type == "cpu" and cpu_has_native_bf16())
    return precision == "bf16"


def autocast_bf16(device: torch.device, enabled: bool | None = None):
    """bf16 autocast; ``enabled=None`` keeps the default of every network here: on CUDA only."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=device.type == "cuda" if enabled is None else enabled)


def predict_logits(model: nn.Module, x: torch.Tensor, prep: Prep, device: torch.device,
                   batch_size: int = 512, bf16: bool | None = None) -> torch.Tensor:
    """Float32 logits for a ``uint8`` tensor, in eval mode, batch by batch."""
    model.eval()
    outs = []
    with torch.inference_mode(), autocast_bf16(device, bf16):
        for i in range(0, len(x), batch_size):
            outs.append(model(prep(x[i:i + batch_size].to(device, non_blocking=True))).float())
    return torch.cat(outs) if outs else torch.empty(0)


def train_loop(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor, prep: Prep, *,
               groups: list[dict[str, Any]] | None = None, epochs: int = 10, batch_size: int = 128,
               optimizer: str = "sgd", lr: float = 0.05, schedule: str = "onecycle", weight_decay: float = 5e-4,
               label_smoothing: float = 0.0, augment: str = "none", hflip: bool = False,
               patience: int | None = None, time_budget_s: float | None = None, seed: int = 0,
               val: tuple[torch.Tensor, torch.Tensor] | None = None, compile: bool = False,
               callback: Callable[[int, dict[str, float]], None] | None = None,
               epoch_offset: int = 0, bf16: bool | None = None) -> dict[str, Any]:
    """Train ``model`` in place; with ``val`` it ends holding its best-on-validation weights.

    Returns ``{"history": [record per epoch], "best_epoch": int, "best_val": float, "stopped_by_budget": bool}``;
    epochs are numbered from ``epoch_offset`` (so a warm-up phase and the main phase log one continuous curve).
    ``stopped_by_budget`` is true when ``time_budget_s`` ran out with epochs left: the run ended early, with its
    learning-rate schedule unfinished, so it is not the converged recipe (early stopping on ``patience`` is not
    a budget stop).
    """
    dev = next(model.parameters()).device
    n = len(ys)
    steps = max(1, epochs * math.ceil(n / batch_size))
    opt, sched = make_optimizer(groups or [{"params": list(model.parameters())}], optimizer, lr, weight_decay,
                                schedule, steps)
    fwd = torch.compile(model) if compile else model
    gen = torch.Generator().manual_seed(seed)
    best_val, best_epoch, best_state, history = -1.0, epoch_offset + epochs - 1, None, []
    stopped_by_budget = False
    t_start = time.perf_counter()
    for epoch in range(epoch_offset, epoch_offset + epochs):
        model.train()
        t0, total = time.perf_counter(), torch.zeros((), device=dev)
        perm = torch.randperm(n, generator=gen)
        per_epoch = math.ceil(n / batch_size)  # a bar on a terminal: epoch k/N, batches, ETA of the whole run
        for i in progress(range(0, n, batch_size), f"epoch {epoch + 1}/{epoch_offset + epochs}", total=steps,
                          initial=(epoch - epoch_offset) * per_epoch, unit="batch"):
            idx = perm[i:i + batch_size]
            xb, yb = augment_batch(xs[idx.to(xs.device)].to(dev, non_blocking=True), ys[idx.to(ys.device)],
                                   augment, hflip, gen)
            xb = prep(xb)
            with autocast_bf16(dev, bf16):
                loss = F.cross_entropy(fwd(xb), yb.to(dev), label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.detach() * len(idx)  # no per-step host sync
        dt = time.perf_counter() - t0
        rec = {"train_loss": float(total) / n, "lr": opt.param_groups[0]["lr"], "epoch_time_s": dt,
               "img_per_s": n / max(dt, 1e-9)}
        if val is not None:
            xv, yv = val
            rec["val_accuracy"] = float((predict_logits(model, xv, prep, dev, bf16=bf16).argmax(1).cpu() == yv.cpu())
                                        .float().mean())
            if rec["val_accuracy"] > best_val:
                best_val, best_epoch = rec["val_accuracy"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append(rec)
        if callback is not None:
            callback(epoch, rec)
        if val is not None and patience is not None and epoch - best_epoch >= patience:
            break
        if time_budget_s is not None and time.perf_counter() - t_start > time_budget_s:
            stopped_by_budget = epoch < epoch_offset + epochs - 1  # out of time with epochs left to run
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if val is None:
        best_epoch = epoch_offset + len(history) - 1
    return {"history": history, "best_epoch": best_epoch, "best_val": best_val, "stopped_by_budget": stopped_by_budget}


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """What every network estimator shares: data onto the device, predictions, size. Subclasses set
    ``model_`` and ``prep_`` (``uint8`` batch → network input) in ``fit``."""

    predict_batch_size = 512

    def _fit_data(self, X: Any, y: Any, X_val: Any, y_val: Any) -> tuple[np.ndarray, torch.device, torch.Tensor,
                                                                         torch.Tensor, tuple | None]:
        """Checked images, the device, training tensors and the validation pair (or None); sets ``classes_``."""
        X = check_images(X)
        self.device_ = dev = pick_device(self.device)
        use_all_cores()
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        val = None
        if X_val is not None and len(X_val) > 0:
            val = (to_tensor(check_images(X_val), dev),
                   torch.as_tensor(np.searchsorted(self.classes_, np.asarray(y_val))))
        return X, dev, to_tensor(X, dev), torch.as_tensor(y_idx), val

    def _finish_fit(self, model: nn.Module, history: list[dict], best_epoch: int,
                    stopped_by_budget: bool = False) -> None:
        """``fit_info_``: what the harness records; ``stopped_by_budget`` marks a run that ``time_budget_s`` cut
        short (fewer epochs than asked, schedule unfinished), never to be read as the converged recipe."""
        self.history_, self.best_epoch_ = history, best_epoch
        self.fit_info_ = {"n_params": sum(p.numel() for p in model.parameters()), "epochs_run": len(history),
                          "best_epoch": best_epoch, "device": str(self.device_),
                          "stopped_by_budget": bool(stopped_by_budget)}

    def _logits(self, X: Any) -> torch.Tensor:
        return predict_logits(self.model_, to_tensor(check_images(X), self.device_), self.prep_, self.device_,
                              batch_size=self.predict_batch_size, bf16=getattr(self, "bf16_", None))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self._logits(X).argmax(1).cpu().numpy()]

    def predict_proba(self, X: Any) -> np.ndarray:
        return torch.softmax(self._logits(X), 1).cpu().numpy()

    def model_size_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.model_.state_dict().values())


class NetClassifier(TorchClassifier):
    """A network from :mod:`pipelines.nets` trained from scratch by :func:`train_loop` on ``uint8`` images.

    ``width=None`` keeps the architecture's own default; ``hflip=None`` follows the dataset (the harness
    passes ``allow_hflip``); inputs are standardised with the training split's per-channel mean and std.
    ``precision="auto"``: bf16 autocast on CUDA and on CPUs with native bf16, else fp32 (see
    :func:`resolve_bf16`); ``channels_last`` lays convolutional nets out NHWC on every device.
    """

    def __init__(self, arch: str = "cnn-small", width: int | None = None, epochs: int = 10,
                 batch_size: int = 128, optimizer: str = "sgd", lr: float = 0.05, schedule: str = "onecycle",
                 weight_decay: float = 5e-4, label_smoothing: float = 0.0, augment: str = "none",
                 hflip: bool | None = None, patience: int | None = None, time_budget_s: float | None = None,
                 precision: Literal["auto", "cuda-bf16", "bf16", "fp32"] = "auto", channels_last: bool = True,
                 compile: bool = False, device: str = "auto", seed: int = 0):
        self.arch = arch
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.hflip = hflip
        self.patience = patience
        self.time_budget_s = time_budget_s
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.device = device
        self.seed = seed

    def prep_(self, xb: torch.Tensor) -> torch.Tensor:
        """``uint8`` batch → standardised float input (the training split's per-channel mean and std)."""
        x = (xb.float() / 255.0 - self.mean_) / self.std_
        return x.contiguous(memory_format=torch.channels_last) if self.cl_ else x

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            callback: Callable[[int, dict[str, float]], None] | None = None,
            allow_hflip: bool = False) -> NetClassifier:
        X, dev, xs, ys, val = self._fit_data(X, y, X_val, y_val)
        n, h, w, c = X.shape
        self.mean_, self.std_ = channel_stats(X, dev)
        kw = {} if self.width is None else {"width": self.width}
        # bf16 autocast + channels_last: 2.2-2.4x the fp32 training rate of resnet-s/vgg-s/alexnet-s/cnn-small on
        # a 2-core AVX512-BF16 CPU (docs/measurements.md#scratch-cpu); a net without convolutions is not laid out
        self.bf16_ = resolve_bf16(self.precision, dev)
        with seeded(self.seed, dev):
            model = build_net(self.arch, in_channels=c, n_classes=len(self.classes_), size=(h, w), **kw).to(dev)
            self.cl_ = self.channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules())
            if self.cl_:
                model = model.to(memory_format=torch.channels_last)
            self.model_ = model
            res = train_loop(model, xs, ys, self.prep_, epochs=self.epochs, batch_size=self.batch_size,
                             optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
                             weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
                             augment=self.augment, hflip=bool(allow_hflip if self.hflip is None else self.hflip),
                             patience=self.patience, time_budget_s=self.time_budget_s, seed=self.seed, val=val,
                             compile=self.compile, callback=callback, bf16=self.bf16_)
        self._finish_fit(model, res["history"], res["best_epoch"], res["stopped_by_budget"])
        return self
