"""Networks trained from scratch on the benchmark's training split (family ``scratch``)."""

from __future__ import annotations

from pipelines.registry import register
from pipelines.training import NetClassifier


@register("cnn-small", family="scratch", features="cnn", classifier="softmax")
def cnn_small(width: int = 32, epochs: int = 8, batch_size: int = 128, lr: float = 0.05,
              optimizer: str = "sgd", schedule: str = "onecycle", weight_decay: float = 5e-4,
              label_smoothing: float = 0.0, augment: str = "none", patience: int | None = None,
              time_budget_s: float | None = None, device: str = "auto", seed: int = 0) -> NetClassifier:
    """Small 3-block CNN (BN, ReLU, max-pool), SGD-Nesterov + OneCycle: the CPU-friendly scratch baseline."""
    return NetClassifier(arch="cnn-small", width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                         optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                         label_smoothing=label_smoothing, augment=augment, hflip=False, patience=patience,
                         time_budget_s=time_budget_s, device=device, seed=seed)
