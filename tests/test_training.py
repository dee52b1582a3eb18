"""The training loop and augmentation: real (tiny) training runs on ``digits``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.augment import POLICIES, augment_batch
from pipelines.registry import create
from pipelines.training import NetClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(seed=0, n=16, c=3, h=12, w=12):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8), torch.arange(n) % 10


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("hflip", [False, True])
def test_augmentation_keeps_labels_shape_dtype_and_is_seeded(policy, hflip):
    x, y = _batch()
    a1, y1 = augment_batch(x, y, policy, hflip, torch.Generator().manual_seed(1))
    a2, _ = augment_batch(x, y, policy, hflip, torch.Generator().manual_seed(1))
    a3, _ = augment_batch(x, y, policy, hflip, torch.Generator().manual_seed(2))
    assert a1.shape == x.shape and a1.dtype == torch.uint8 and torch.equal(y1, y)
    assert torch.equal(a1, a2)
    if policy == "none":
        assert torch.equal(a1, x)
    else:
        assert not torch.equal(a1, x) and not torch.equal(a1, a3)


def _matches_a_shift(out: torch.Tensor, img: torch.Tensor, pad: int) -> bool:
    p = torch.nn.functional.pad(img, (pad, pad, pad, pad))
    h, w = img.shape[1:]
    return any(torch.equal(out, p[:, dy:dy + h, dx:dx + w]) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_standard_crops_are_shifts_and_flip_only_when_allowed():
    x, y = _batch(n=24, h=8, w=8)
    out, _ = augment_batch(x, y, "standard", False, torch.Generator().manual_seed(0))
    assert all(_matches_a_shift(out[i], x[i], 1) for i in range(len(x)))  # digits: never mirrored
    out, _ = augment_batch(x, y, "standard", True, torch.Generator().manual_seed(0))
    flipped = [not _matches_a_shift(out[i], x[i], 1) and _matches_a_shift(out[i], x[i].flip(2), 1)
               for i in range(len(x))]
    assert 0 < sum(flipped) < len(x)


def test_tiny_training_run_lowers_loss_and_beats_chance(digits_split):
    d = digits_split
    seen = []
    clf = NetClassifier(arch="cnn-small", width=8, epochs=6, batch_size=64, lr=0.05, seed=0)
    clf.fit(d.X_train, d.y_train, d.X_val, d.y_val, callback=lambda e, r: seen.append((e, r)))
    losses = [r["train_loss"] for r in clf.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert [e for e, _ in seen] == list(range(6))
    assert {"train_loss", "val_accuracy", "lr", "epoch_time_s"} <= set(seen[0][1])
    acc = float(np.mean(clf.predict(d.X_test) == d.y_test))
    assert acc > 0.8  # chance is 0.1
    assert clf.fit_info_["n_params"] > 0 and clf.fit_info_["device"] == "cpu" and clf.model_size_bytes() > 0
    proba = clf.predict_proba(d.X_test[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_same_seed_same_result_on_cpu(digits_split):
    d = digits_split
    runs = [NetClassifier(arch="cnn-small", width=8, epochs=2, batch_size=64, augment="strong", seed=3)
            .fit(d.X_train, d.y_train) for _ in range(2)]
    assert [h["train_loss"] for h in runs[0].history_] == [h["train_loss"] for h in runs[1].history_]
    assert np.array_equal(runs[0].predict_proba(d.X_test), runs[1].predict_proba(d.X_test))


def test_early_stopping_restores_the_best_validation_epoch(digits_split):
    d = digits_split
    # Validation labels shuffled: validation accuracy wanders, so the best epoch is rarely the last one.
    y_val = np.random.default_rng(0).permutation(d.y_val)
    states = []
    clf = NetClassifier(arch="mlp", width=32, epochs=30, batch_size=64, lr=0.1, schedule="constant",
                        patience=3, seed=0)
    clf.fit(d.X_train, d.y_train, d.X_val, y_val, callback=lambda e, r: states.append(
        {k: v.clone() for k, v in clf.model_.state_dict().items()}))
    vals = [h["val_accuracy"] for h in clf.history_]
    best = int(np.argmax(vals))
    assert clf.best_epoch_ == best == clf.fit_info_["best_epoch"]
    assert len(vals) == best + 4 < 30  # stopped `patience` epochs after the best
    final = clf.model_.state_dict()
    assert all(torch.equal(final[k], states[best][k]) for k in final)  # the best epoch's weights ...
    assert not all(torch.equal(final[k], states[-1][k]) for k in final)  # ... not the last epoch's
    assert float(np.mean(clf.predict(d.X_val) == y_val)) == pytest.approx(vals[best])


def test_time_budget_stops_after_one_epoch(digits_split):
    d = digits_split
    clf = NetClassifier(arch="mlp", epochs=50, time_budget_s=0.0).fit(d.X_train, d.y_train)
    assert clf.fit_info_["epochs_run"] == 1


def test_catalogue_recipes_accept_the_harness_hflip_flag(digits_split):
    d = digits_split
    clf = create("lenet5", epochs=1, augment="strong")
    clf.fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val, allow_hflip=False)
    assert clf.fit_info_["epochs_run"] == 1
    with pytest.raises(ValueError, match="augment=.wild. is not allowed"):
        create("mlp", epochs=1, augment="wild").fit(d.X_train, d.y_train)


def test_precision_choices_resolve_per_device():
    import torch

    from pipelines.registry import create
    from pipelines.training import cpu_has_native_bf16, resolve_bf16

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # a fine-tune's default keeps bf16 autocast on a GPU (as before the option existed) and fp32 on a CPU
    assert create("efficientnet_lite0-finetune").precision == "cuda-bf16"
    assert resolve_bf16("cuda-bf16", cuda) and not resolve_bf16("cuda-bf16", cpu)
    assert resolve_bf16("auto", cuda) and resolve_bf16("auto", cpu) == cpu_has_native_bf16()
    assert resolve_bf16("bf16", cpu) and not resolve_bf16("fp32", cuda)
    with pytest.raises(ValueError, match="choose auto, cuda-bf16, bf16 or fp32"):
        resolve_bf16("fp16", cpu)


@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp32", False)])
def test_scratch_precision_and_layout_are_what_the_parameters_say(digits_split, precision, channels_last):
    d = digits_split
    clf = NetClassifier(arch="cnn-small", width=8, epochs=6, batch_size=64, precision=precision,
                        channels_last=channels_last, seed=0).fit(d.X_train, d.y_train)
    assert clf.bf16_ == (precision == "bf16")
    convs = [m.weight for m in clf.model_.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) == channels_last for w in convs)
    assert float(np.mean(clf.predict(d.X_test) == d.y_test)) > 0.8  # bf16 autocast still learns; chance is 0.1
    # the mlp has no convolution to lay out: channels_last leaves it (and its input) alone
    mlp = NetClassifier(arch="mlp", width=16, epochs=1, channels_last=True).fit(d.X_train, d.y_train)
    assert not mlp.cl_ and mlp.predict(d.X_test[:3]).shape == (3,)


def test_an_unknown_scratch_precision_is_refused_before_any_run():
    from pipelines.params import InvalidParameterError, check_params
    from pipelines.registry import get_spec

    with pytest.raises(InvalidParameterError, match="precision"):
        check_params("resnet-s", get_spec("resnet-s").factory, {"precision": "fp16"})
    assert create("resnet-s").precision == "auto" and create("resnet-s").channels_last
