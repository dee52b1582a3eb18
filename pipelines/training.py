"""The one training loop for networks trained on the benchmark's data, wrapped as a scikit-learn classifier.

Read it in one sitting (airbench-style): images stay ``uint8`` on the device, each batch is normalised and
augmented there, SGD-Nesterov or AdamW with a OneCycle or cosine schedule, early stopping on validation
accuracy that restores the best epoch's weights. Per-epoch metrics go to an optional ``callback`` supplied by
the caller (the harness logs them; this module knows nothing about tracking).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin

from pipelines.base import check_images
from pipelines.nets import build_net


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if deterministic and not torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)


def to_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 → ``(N, C, H, W)`` uint8 on ``device`` (normalisation happens per batch)."""
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))).to(device)


def augment_batch(x: torch.Tensor, policy: str, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Batch augmentation on the device. ``standard``: random 4-px-padded crop (+ flip when allowed)."""
    if policy == "none":
        return x
    if policy != "standard":
        raise ValueError(f"unknown augmentation {policy!r}; choose none or standard")
    n, _, h, w = x.shape
    pad = max(1, round(h / 8))
    xp = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device="cpu").to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device="cpu").to(x.device)
    # Gather crops with one advanced-indexing op instead of a Python loop over images.
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    out = xp[torch.arange(n, device=x.device)[:, None, None, None],
             torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows, cols]
    if hflip:
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


class NetClassifier(ClassifierMixin, BaseEstimator):
    """A network from :mod:`pipelines.nets` trained by :meth:`fit` on ``uint8`` image batches."""

    def __init__(self, arch: str = "cnn-small", width: int = 32, epochs: int = 10, batch_size: int = 128,
                 optimizer: str = "sgd", lr: float = 0.05, schedule: str = "onecycle",
                 weight_decay: float = 5e-4, label_smoothing: float = 0.0, augment: str = "none",
                 hflip: bool = False, patience: int | None = None, time_budget_s: float | None = None,
                 device: str = "auto", seed: int = 0):
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
        self.device = device
        self.seed = seed

    # -- helpers -------------------------------------------------------------------------------------------
    def _normalise(self, xb: torch.Tensor) -> torch.Tensor:
        return (xb.float() / 255.0 - self.mean_) / self.std_

    def _make_optimizer(self, model: torch.nn.Module, steps: int):
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0}]
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=self.lr, momentum=0.9, nesterov=True)
        elif self.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=self.lr)
        else:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose sgd or adamw")
        if self.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps, pct_start=0.25)
        elif self.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        else:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose onecycle or cosine")
        return opt, sched

    @torch.inference_mode()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((self._predict_tensor(x) == y).float().mean())

    def _predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.model_.eval()
        outs = []
        with torch.inference_mode(), torch.autocast(self.device_.type, dtype=torch.bfloat16,
                                                    enabled=self.device_.type == "cuda"):
            for i in range(0, len(x), 1024):
                outs.append(self.model_(self._normalise(x[i:i + 1024])).float())
        return torch.cat(outs)

    def _predict_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return self._predict_logits(x).argmax(1)

    # -- scikit-learn API ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            callback: Callable[[int, dict[str, float]], None] | None = None) -> NetClassifier:
        X = check_images(X)
        seed_everything(self.seed)
        self.device_ = dev = pick_device(self.device)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        n_classes, (n, h, w, c) = len(self.classes_), X.shape
        xs, ys = to_tensor(X, dev), torch.as_tensor(y_idx, device=dev)
        flat = xs.float().div_(255).transpose(0, 1).reshape(c, -1)
        self.mean_ = flat.mean(1).view(1, c, 1, 1)
        self.std_ = flat.std(1).clamp_min(1e-3).view(1, c, 1, 1)
        del flat
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            xv = to_tensor(check_images(X_val), dev)
            yv = torch.as_tensor(np.searchsorted(self.classes_, np.asarray(y_val)), device=dev)
        self.model_ = model = build_net(self.arch, in_channels=c, n_classes=n_classes, size=(h, w),
                                        width=self.width).to(dev)
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        steps_per_epoch = math.ceil(n / self.batch_size)
        opt, sched = self._make_optimizer(model, self.epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(self.seed)
        best_acc, best_state, best_epoch, history = -1.0, None, -1, []
        t_start = time.perf_counter()
        for epoch in range(self.epochs):
            model.train()
            t0, total, count = time.perf_counter(), 0.0, 0
            perm = torch.randperm(n, generator=gen).to(dev)
            for i in range(0, n, self.batch_size):
                idx = perm[i:i + self.batch_size]
                xb = self._normalise(augment_batch(xs[idx], self.augment, self.hflip, gen))
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    loss = F.cross_entropy(model(xb), ys[idx], label_smoothing=self.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total, count = total + loss.item() * len(idx), count + len(idx)
            rec = {"train_loss": total / count, "lr": opt.param_groups[0]["lr"],
                   "epoch_time_s": time.perf_counter() - t0}
            if has_val:
                rec["val_accuracy"] = self._accuracy(xv, yv)
                if rec["val_accuracy"] > best_acc:
                    best_acc, best_epoch = rec["val_accuracy"], epoch
                    best_state = copy.deepcopy(model.state_dict())
            history.append(rec)
            if callback is not None:
                callback(epoch, rec)
            if has_val and self.patience is not None and epoch - best_epoch >= self.patience:
                break
            if self.time_budget_s is not None and time.perf_counter() - t_start > self.time_budget_s:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        self.history_ = history
        self.best_epoch_ = best_epoch if has_val else len(history) - 1
        self.fit_info_ = {"n_params": sum(p.numel() for p in model.parameters()),
                          "epochs_run": len(history), "best_epoch": self.best_epoch_,
                          "device": str(dev)}
        return self

    def predict(self, X: Any) -> np.ndarray:
        x = to_tensor(check_images(X), self.device_)
        return self.classes_[self._predict_tensor(x).cpu().numpy()]

    def predict_proba(self, X: Any) -> np.ndarray:
        x = to_tensor(check_images(X), self.device_)
        return torch.softmax(self._predict_logits(x), 1).cpu().numpy()

    def model_size_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.model_.state_dict().values())
