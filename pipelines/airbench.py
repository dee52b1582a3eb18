"""The airbench94 training recipe (Jordan 2024, arXiv:2404.00498), re-written here for any image dataset.

It is not :func:`pipelines.training.train_loop` because the recipe is its accuracy-per-second: the loss is
summed over the batch with learning rates and weight decay scaled per kilo-step, BatchNorm biases learn 64×
faster, the whitening layer's bias trains for the first epochs only, a triangular schedule, Lookahead (every
5 steps the weights move to an exponential average whose decay rises cubically, and end on it), alternating
flips (each image is flipped in every other epoch rather than at random) and reflect-padded 2-px
translations, then test-time averaging over flips and 1-px translations. All of it fits on one screen below.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F

from cvbench_util.progress import progress
from pipelines.augment import random_crop
from pipelines.base import check_images
from pipelines.nets import build_net
from pipelines.nets.airbench import BN_EPS, Norm, init_whitening
from pipelines.params import Interval
from pipelines.training import (
    TorchClassifier,
    autocast_bf16,
    channel_stats,
    predict_logits,
    resolve_bf16,
    seeded,
    to_tensor,
)


class AirbenchClassifier(TorchClassifier):
    """Scratch ``airbench-cnn`` trained by the airbench94 recipe; ``epochs`` may be fractional (9.9 is the
    published CIFAR-10 setting). ``precision``: ``bf16`` autocast or ``fp32``; ``auto`` is bf16 on CUDA and
    on CPUs with native bf16 (AVX512-BF16 / AMX), fp32 elsewhere. ``tta``: 0 none, 1 flips (where allowed),
    2 flips and ±1-px translations. ``bn_eps``: BatchNorm's epsilon, 1e-3 so that bf16 trains like fp32
    (airbench94's 1e-12 does not in bf16; see :mod:`pipelines.nets.airbench`)."""

    predict_batch_size = 1000

    def __init__(self, width: int = 64, epochs: Annotated[float, Interval(gt=0)] = 9.9, batch_size: int = 1024,
                 lr: float = 11.5, momentum: Annotated[float, Interval(ge=0, lt=1)] = 0.85,
                 weight_decay: float = 0.0153, bias_scaler: float = 64.0, label_smoothing: float = 0.2,
                 whiten_bias_epochs: int = 3, translate: int = 2, hflip: bool | None = None,
                 tta: Annotated[int, Interval(ge=0, le=2)] = 2, lookahead: bool = True, precision: str = "auto",
                 channels_last: bool = True, compile: bool = False, device: str = "auto",
                 bn_eps: Annotated[float, Interval(gt=0)] = BN_EPS, seed: int = 0):
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.bias_scaler = bias_scaler
        self.label_smoothing = label_smoothing
        self.whiten_bias_epochs = whiten_bias_epochs
        self.translate = translate
        self.hflip = hflip
        self.tta = tta
        self.lookahead = lookahead
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.device = device
        self.bn_eps = bn_eps
        self.seed = seed

    def __getstate__(self) -> dict[str, Any]:  # a compiled forward does not pickle: rebuilt on load
        state = self.__dict__.copy()
        state.pop("fwd_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "model_" in state:
            self.fwd_ = self.model_

    # ------------------------------------------------------------------------------------------ helpers
    def prep_(self, xb: torch.Tensor) -> torch.Tensor:
        x = (xb.float() / 255.0 - self.mean_) / self.std_
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _views(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fwd_(x)
        return 0.5 * (out + self.fwd_(x.flip(3))) if self.hflip_ and self.tta >= 1 else out

    def _tta_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.tta < 2:
            return self._views(x)
        h, w = x.shape[2:]
        xp = F.pad(x, (1,) * 4, mode="reflect")
        shifted = self._views(xp[:, :, :h, :w]) + self._views(xp[:, :, 2:, 2:])
        return 0.5 * self._views(x) + 0.25 * shifted

    def _logits(self, X: Any) -> torch.Tensor:
        x = to_tensor(check_images(X), self.device_)
        self.model_.eval()
        outs = []
        with torch.inference_mode(), autocast_bf16(self.device_, self.bf16_):
            for i in range(0, len(x), self.predict_batch_size):
                outs.append(self._tta_logits(self.prep_(x[i:i + self.predict_batch_size])).float())
        return torch.cat(outs) if outs else torch.empty(0)

    # ------------------------------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            callback: Callable[[int, dict[str, float]], None] | None = None,
            allow_hflip: bool = False) -> AirbenchClassifier:
        X, dev, xs, ys, val = self._fit_data(X, y, X_val, y_val)
        n, h, w, c = X.shape
        self.mean_, self.std_ = channel_stats(X, dev)
        self.hflip_ = bool(allow_hflip if self.hflip is None else self.hflip)
        self.bf16_ = resolve_bf16(self.precision, dev)
        bs = min(self.batch_size, n)
        steps_per_epoch = n // bs  # full batches only, as the recipe
        total = max(1, math.ceil(self.epochs * steps_per_epoch))
        with seeded(self.seed, dev):
            gen = torch.Generator().manual_seed(self.seed)
            model = build_net("airbench-cnn", in_channels=c, n_classes=len(self.classes_), size=(h, w),
                              width=self.width, bn_eps=self.bn_eps).to(dev)
            whiten = model[0]
            init_whitening(whiten, self.prep_(xs[torch.randperm(n, generator=gen)[:5000].to(xs.device)].to(dev)))
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.model_ = model
            self.fwd_ = torch.compile(model) if self.compile else model
            # Loss summed over the batch: rates and decay are per kilo-step of momentum-averaged gradient.
            kilostep = 1024 * (1 + 1 / (1 - self.momentum))
            lr, lr_b, wd = self.lr / kilostep, self.lr * self.bias_scaler / kilostep, self.weight_decay * bs / kilostep
            norm_biases = [m.bias for m in model.modules() if isinstance(m, Norm)]
            others = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in norm_biases)]
            opt = torch.optim.SGD([{"params": norm_biases, "lr": lr_b, "weight_decay": wd / lr_b},
                                   {"params": others, "lr": lr, "weight_decay": wd / lr}],
                                  momentum=self.momentum, nesterov=True)
            base_lrs = [g["lr"] for g in opt.param_groups]
            # triangle: 0.2 → 1 over the first 23% of steps, then down to 0.07
            sched = np.interp(np.arange(total + 1), [0, int(0.23 * total), total], [0.2, 1.0, 0.07])
            alpha = 0.95 ** 5 * (np.arange(total + 1) / total) ** 3
            ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

            def lookahead(decay: float) -> None:
                with torch.no_grad():
                    for e, v in zip(ema.values(), model.state_dict().values()):
                        if v.dtype.is_floating_point:
                            e.lerp_(v, 1 - decay)
                            v.copy_(e)

            flip_mask = torch.rand(n, generator=gen) < 0.5
            history, step, epoch = [], 0, 0
            while step < total:
                model.train()
                whiten.bias.requires_grad = epoch < self.whiten_bias_epochs
                t0, loss_sum, seen = time.perf_counter(), torch.zeros(()), 0
                perm = torch.randperm(n, generator=gen)
                # a bar on a terminal: epoch k/N, batches, ETA of the whole run (cvbench_util.progress)
                for i in progress(range(steps_per_epoch), f"epoch {epoch + 1}/{math.ceil(total / steps_per_epoch)}",
                                  total=total, initial=step, unit="batch"):
                    if step >= total:
                        break
                    idx = perm[i * bs:(i + 1) * bs]
                    xb = self.prep_(xs[idx.to(xs.device)].to(dev, non_blocking=True))
                    if self.hflip_:
                        flip = (flip_mask[idx] ^ bool(epoch % 2)).to(dev)
                        xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                    if self.translate:
                        xb = random_crop(xb, gen, self.translate, mode="reflect")
                        if self.channels_last:
                            xb = xb.contiguous(memory_format=torch.channels_last)
                    with autocast_bf16(self.device_, self.bf16_):
                        loss = F.cross_entropy(self.fwd_(xb), ys[idx.to(ys.device)].to(dev),
                                               label_smoothing=self.label_smoothing, reduction="sum")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    for g, b in zip(opt.param_groups, base_lrs):
                        g["lr"] = b * sched[step]
                    opt.step()
                    step += 1
                    if self.lookahead and step % 5 == 0:
                        lookahead(alpha[step])
                    loss_sum += loss.detach().float().cpu()
                    seen += len(idx)
                if self.lookahead and step >= total:
                    lookahead(1.0)  # end on the averaged weights
                dt = time.perf_counter() - t0
                rec = {"train_loss": float(loss_sum) / max(seen, 1), "lr": float(opt.param_groups[1]["lr"]),
                       "epoch_time_s": dt, "img_per_s": seen / max(dt, 1e-9)}
                if val is not None:
                    xv, yv = val
                    pred = predict_logits(self.fwd_, xv, self.prep_, dev, 1000, bf16=self.bf16_).argmax(1).cpu()
                    rec["val_accuracy"] = float((pred == yv.cpu()).float().mean())
                history.append(rec)
                if callback is not None:
                    callback(epoch, rec)
                epoch += 1
        self._finish_fit(model, history, epoch - 1)
        self.fit_info_.update(steps=total, precision="bf16" if self.bf16_ else "fp32")
        return self
