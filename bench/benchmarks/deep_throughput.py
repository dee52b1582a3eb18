"""Our training loop and frozen-feature extraction against bare PyTorch loops, same model, batch and device.

    python -m bench.benchmarks.deep_throughput [--arch resnet-s --width 16] [--n 2048] [--batch 128]
        [--backbone efficientnet_lite0 --resolution 96] [--dataset folder:../shared/data/cifar10-jpg.zip]

Prints images/s side by side with the ratios (goal ≥ 0.9 for both):

* training: :func:`pipelines.training.train_loop` (uint8 batches gathered, normalised per batch, scheduler,
  loss accumulated on the device, augmentation ``none``) vs a bare loop over pre-normalised float batches
  (forward, cross-entropy, backward, SGD step — nothing else);
* extraction: :class:`pipelines.transfer.BackboneFeatures` (uint8 → crop/resize/normalise per batch, copy
  to numpy) vs a bare ``torch.inference_mode()`` loop over already-preprocessed float batches.

Each side runs once to warm up, then is timed over ``--repeats`` runs (best kept), alternating the two.
The feature cache is off, so extraction numbers are real.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.benchmarks import sample_images
from pipelines import cache
from pipelines.nets import build_net
from pipelines.training import autocast_bf16, pick_device, train_loop, use_all_cores
from pipelines.transfer import BackboneFeatures, ImagenetPrep, load_backbone


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench_training(X: np.ndarray, arch: str, width: int | None, batch: int, dev: torch.device,
                   repeats: int) -> tuple[float, float]:
    n, h, w, c = X.shape
    y = torch.as_tensor(np.arange(n) % 10)
    kw = {} if width is None else {"width": width}
    xs = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))).to(dev)
    mean, std = torch.full((1, c, 1, 1), 0.5, device=dev), torch.full((1, c, 1, 1), 0.25, device=dev)

    def prep(xb: torch.Tensor) -> torch.Tensor:
        x = (xb.float() / 255.0 - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x

    def ours() -> float:
        torch.manual_seed(0)
        model = build_net(arch, c, 10, (h, w), **kw).to(dev)
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        _sync(dev)
        t0 = time.perf_counter()
        train_loop(model, xs, y, prep, epochs=1, batch_size=batch, lr=0.01)
        _sync(dev)
        return n / (time.perf_counter() - t0)

    xf = prep(xs)  # the bare loop gets its inputs pre-normalised, pre-shuffled
    yd = y.to(dev)

    def bare() -> float:
        torch.manual_seed(0)
        model = build_net(arch, c, 10, (h, w), **kw).to(dev)
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        model.train()
        _sync(dev)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            with autocast_bf16(dev):
                loss = F.cross_entropy(model(xf[i:i + batch]), yd[i:i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(dev)
        return n / (time.perf_counter() - t0)

    return _best(ours, bare, repeats)


def bench_extraction(X: np.ndarray, backbone: str, resolution: int, batch: int, dev: torch.device,
                     repeats: int) -> tuple[float, float]:
    n = len(X)
    feats = BackboneFeatures(backbone=backbone, resolution=resolution, batch_size=batch, device=str(dev))

    def ours() -> float:
        _sync(dev)
        t0 = time.perf_counter()
        feats._extract(X)
        _sync(dev)
        return n / (time.perf_counter() - t0)

    model, _ = load_backbone(backbone)
    model = model.to(dev).eval().to(memory_format=torch.channels_last)
    p = ImagenetPrep.for_backbone(backbone, resolution, dev)
    with torch.inference_mode():
        xf = torch.cat([p(torch.from_numpy(np.ascontiguousarray(X[i:i + batch].transpose(0, 3, 1, 2))).to(dev))
                        for i in range(0, n, batch)]).contiguous(memory_format=torch.channels_last)

    def bare() -> float:
        _sync(dev)
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast_bf16(dev):
            for i in range(0, n, batch):
                model(xf[i:i + batch])
        _sync(dev)
        return n / (time.perf_counter() - t0)

    return _best(ours, bare, repeats)


def _best(ours, bare, repeats: int) -> tuple[float, float]:
    ours(), bare()  # warm-up (allocator, oneDNN/cuDNN kernel selection, model load)
    o, b = [], []
    for _ in range(repeats):
        o.append(ours())
        b.append(bare())
    return max(o), max(b)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="dataset spec (default: random 32×32×3 uint8 images)")
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--arch", default="resnet-s")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    cache.set_cache_dir(None)
    dev = pick_device(a.device)
    use_all_cores()
    X = sample_images(a.dataset, a.n)
    print(f"device={dev} threads={torch.get_num_threads()} images={X.shape} batch={a.batch}")
    o, b = bench_training(X, a.arch, a.width, a.batch, dev, a.repeats)
    print(f"training   {a.arch}(width={a.width}):  ours {o:9.1f} img/s   bare loop {b:9.1f} img/s   "
          f"ratio {o / b:.2f}  (goal ≥ 0.9)")
    o, b = bench_extraction(X, a.backbone, a.resolution, a.batch, dev, a.repeats)
    print(f"extraction {a.backbone}@{a.resolution}px: ours {o:9.1f} img/s   bare loop {b:9.1f} img/s   "
          f"ratio {o / b:.2f}  (goal ≥ 0.9)")


if __name__ == "__main__":
    main()
