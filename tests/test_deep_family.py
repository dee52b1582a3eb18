"""The deep family: GoogLeNet as a transfer backbone (offline, random weights), the ``inception-s`` scratch
network, the deep suites (profiles, dataset override) and runs cut short by a time budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from pipelines import cache, transfer
from pipelines.nets import build_net, list_nets
from pipelines.registry import create, expand
from pipelines.transfer import (
    imagenet_model,
    load_backbone,
    load_embedder,
    torchvision_weights_file,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEEP_FAMILIES = ("mlp", "lenet5", "cnn-small", "alexnet-s", "vgg-s", "resnet-s", "inception-s", "airbench-cnn")


# -- GoogLeNet, a torchvision backbone --------------------------------------------------------------------------
@pytest.fixture
def googlenet_file(tmp_path, monkeypatch):
    """Random GoogLeNet weights in the layout of torchvision's ImageNet file (aux heads included), placed in a
    temporary torch hub cache; the per-process backbone cache starts empty and is thrown away after."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(transfer, "_BACKBONE_CACHE", {})
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("download attempted"))
    _, path = torchvision_weights_file("googlenet")
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    torch.save(ref.state_dict(), path)
    return ref


def test_googlenet_loads_the_file_drops_aux_heads_and_embeds_1024_pooled_features(googlenet_file):
    ref = googlenet_file
    model = imagenet_model("googlenet")  # read from the hub cache, no download
    assert torch.equal(model.conv1.conv.weight, ref.conv1.conv.weight) and torch.equal(model.fc.bias, ref.fc.bias)
    assert model.aux1 is None and model.aux2 is None and not model.aux_logits
    assert model.transform_input  # torchvision's setting for its ImageNet weights
    # the frozen feature extractor: the global-pooled 1024-d output of inception 5b, nothing after it
    embedder, dim = load_embedder("googlenet")
    assert dim == 1024
    pooled = []
    handle = embedder.backbone.avgpool.register_forward_hook(lambda m, i, o: pooled.append(o.flatten(1)))
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        out = embedder(x)
    handle.remove()
    assert out.shape == (2, 1024) and torch.equal(out, pooled[0])
    # in training mode too (fine-tuning) it returns one tensor: no aux logits, no dropout left in the backbone
    backbone, _ = load_backbone("googlenet")
    backbone.train()
    y1, y2 = backbone(x), backbone(x)
    assert isinstance(y1, torch.Tensor) and y1.shape == (2, 1024) and torch.allclose(y1, y2)
    assert isinstance(backbone.fc, nn.Identity) and isinstance(backbone.dropout, nn.Identity)


def test_googlenet_pipelines_carry_googlenet(googlenet_file, digits_split, tmp_path):
    d = digits_split
    feats = create("googlenet-features-logreg", resolution=32, tune=False)
    assert feats.features.backbone == "googlenet"
    cache.set_cache_dir(tmp_path / "features")
    feats.fit(d.X_train[:200], d.y_train[:200])
    assert feats.fit_info_["n_features"] == 1024 and feats.fit_info_["n_params"] > 5_000_000
    clf = create("googlenet-finetune", resolution=32, warmup_epochs=1, epochs=1, batch_size=50, augment="none")
    assert clf.backbone == "googlenet"
    clf.fit(d.X_train[:200], d.y_train[:200], X_val=d.X_val[:50], y_val=d.y_val[:50])
    head = clf.model_.head[-1]
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (1024, 10)
    assert clf.model_.backbone.aux1 is None and isinstance(clf.model_.backbone.fc, nn.Identity)
    assert clf.fit_info_["epochs_run"] == 2 and not clf.fit_info_["stopped_by_budget"]
    pretrained, _ = load_backbone("googlenet")
    assert not torch.equal(clf.model_.backbone.conv1.conv.weight, pretrained.conv1.conv.weight)  # fine-tuned
    assert clf.predict(d.X_test[:20]).shape == (20,)
    # out of time after the warm-up: fine-tuning never ran, and the run says so
    cut = create("googlenet-finetune", resolution=32, warmup_epochs=1, epochs=3, batch_size=50, augment="none",
                 time_budget_s=1e-6).fit(d.X_train[:100], d.y_train[:100])
    assert cut.fit_info_["epochs_run"] == 1 and cut.fit_info_["stopped_by_budget"]


# -- inception-s ------------------------------------------------------------------------------------------------
def test_inception_s_is_registered_and_fits_every_input_size():
    assert "inception-s" in list_nets() and "inception-s" in expand(["*"])
    for c in (1, 3):
        for size in ((8, 8), (20, 20), (28, 28), (32, 32), (64, 64), (96, 96), (24, 40)):
            model = build_net("inception-s", in_channels=c, n_classes=7, size=size, width=16).eval()
            with torch.no_grad():
                out = model(torch.randn(2, c, *size))
            assert out.shape == (2, 7) and torch.isfinite(out).all(), (c, size)


def test_inception_s_has_googlenet_modules_at_width_64():
    from pipelines.nets.inception import Inception

    m = build_net("inception-s", in_channels=3, n_classes=10, size=(32, 32))
    mods = [x for x in m.modules() if isinstance(x, Inception)]
    # GoogLeNet's 3a, 3b, 4a, 4b, 5a, 5b output channels (Szegedy et al. 2015, table 1)
    assert [x.out_channels for x in mods] == [256, 480, 512, 512, 832, 1024]
    assert all(len(x.b5) == 3 and x.b5[1][0].kernel_size == x.b5[2][0].kernel_size == (3, 3) for x in mods)
    assert sum(isinstance(x, nn.BatchNorm2d) for x in m.modules()) == 1 + 6 * 7
    assert m.head[-1].in_features == 1024
    assert 3_500_000 < sum(p.numel() for p in m.parameters()) < 4_200_000


def test_inception_s_pipeline_learns_digits(digits_split):
    d = digits_split
    clf = create("inception-s", width=16, epochs=4, batch_size=64, augment="none")
    assert clf.arch == "inception-s"
    clf.fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)
    acc = float(np.mean(clf.predict(d.X_test) == d.y_test))
    assert acc >= 0.85, acc
    assert not clf.fit_info_["stopped_by_budget"] and clf.fit_info_["epochs_run"] == 4


# -- runs cut by a time budget ----------------------------------------------------------------------------------
def test_time_budget_stop_is_recorded_by_the_estimator_and_tagged_by_the_runner(tracker, digits_split):
    from bench.runner import Job, run_grid

    d = digits_split
    cut = create("mlp", width=32, epochs=50, time_budget_s=1e-6).fit(d.X_train, d.y_train)
    assert cut.fit_info_["epochs_run"] == 1 and cut.fit_info_["stopped_by_budget"]
    # a budget that runs out on the last epoch, or one that is never reached, cuts nothing short
    assert not create("mlp", width=32, epochs=1, time_budget_s=1e-6).fit(d.X_train, d.y_train).fit_info_[
        "stopped_by_budget"]
    jobs = [Job("digits", "mlp", params={"width": 32, "epochs": 50, "time_budget_s": 1e-6}),
            Job("digits", "mlp", params={"width": 32, "epochs": 2, "time_budget_s": 600.0})]
    cut_res, full_res = run_grid(jobs, tracker=tracker, log=lambda m: None)
    assert cut_res.status == full_res.status == "FINISHED"
    cut_run, full_run = (tracker.run_data(r.run_id) for r in (cut_res, full_res))
    assert cut_run["tags"]["budget_stopped"] == "true" and cut_run["metrics"]["epochs_run"] == 1
    assert full_run["tags"]["budget_stopped"] == "false" and full_run["metrics"]["epochs_run"] == 2
    from bench.report.frame import tidy_frame

    frame = tidy_frame(tracker.runs_frame()).set_index("run_id")
    assert frame.loc[cut_res.run_id, "budget_stopped"] == "true"
    assert frame.loc[full_res.run_id, "budget_stopped"] == "false"


# -- deep suites ------------------------------------------------------------------------------------------------
def test_every_built_in_suite_loads():
    from bench.suites import load_suite, suite_names

    names = suite_names()
    assert {"quick", "classical", "deep", "deep-cpu", "deep-gpu"} <= set(names)
    for n in names:
        s = load_suite(n)
        assert s.pipelines and expand([p for p, _ in s.pipelines]), n


def test_deep_suites_name_cifar10_and_every_deep_family():
    from bench.suites import load_suite

    cpu, gpu, deep = (load_suite(n) for n in ("deep-cpu", "deep-gpu", "deep"))
    for s in (cpu, gpu):
        assert s.datasets == ["cifar10"]
        names = set(expand([p for p, _ in s.pipelines]))
        assert set(DEEP_FAMILIES) <= names, set(DEEP_FAMILIES) - names
        assert any("-features-" in n for n in names) and any(n.endswith("-finetune") for n in names)
    # deep-cpu: one transfer pipeline of each kind, on the packaged backbone (no download on any machine)
    cpu_names = expand([p for p, _ in cpu.pipelines])
    transfer_names = [n for n in cpu_names if "-features-" in n or n.endswith("-finetune")]
    assert transfer_names == ["efficientnet_lite0-features-logreg", "efficientnet_lite0-finetune"]
    assert dict(cpu.pipelines)["airbench-cnn"] == {"epochs": 8}
    assert dict(gpu.pipelines)["airbench-cnn"]["epochs"] == 9.9
    # `deep` is the GPU profile under its old name
    assert (deep.datasets, deep.pipelines, deep.seeds, deep.options) == (gpu.datasets, gpu.pipelines, gpu.seeds,
                                                                          gpu.options)
    assert deep.name == "deep"


def test_dataset_on_the_command_line_replaces_the_suites(capsys):
    from bench.cli import _build_parser, _jobs
    from bench.suites import load_suite

    suite = load_suite("deep-cpu")
    n = len(expand([p for p, _ in suite.pipelines]))
    jobs = _jobs(_build_parser().parse_args(["run", "--suite", "deep-cpu", "--dataset", "digits",
                                             "--dataset", "mnist5k"]))
    assert len(jobs) == 2 * n and {j.dataset for j in jobs} == {"digits", "mnist5k"}
    airbench = next(j for j in jobs if j.pipeline == "airbench-cnn")
    assert airbench.params == {"epochs": 8}  # the suite's budgets still apply
    assert {j.dataset for j in _jobs(_build_parser().parse_args(["run", "--suite", "deep-cpu"]))} == {"cifar10"}


def test_alias_suites_are_checked(tmp_path):
    from bench.errors import ConfigError
    from bench.suites import load_suite

    (tmp_path / "a.yaml").write_text("alias_of: b.yaml\n")
    (tmp_path / "b.yaml").write_text("alias_of: a.yaml\n")
    with pytest.raises(ConfigError, match=r"line 1: suite aliases loop \(a\.yaml → b\.yaml → a\.yaml\)"):
        load_suite(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("alias_of: deep-cpu\nseeds: [1]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml, line 2: an alias suite holds only"):
        load_suite(str(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text("description: mine\nalias_of: no-such-suite\n")
    with pytest.raises(ConfigError, match=r"d\.yaml, line 2: alias_of 'no-such-suite': suite 'no-such-suite' not found"):
        load_suite(str(tmp_path / "d.yaml"))
    (tmp_path / "e.yaml").write_text("alias_of: quick\n")
    e = load_suite(str(tmp_path / "e.yaml"))
    assert e.name == "e" and e.pipelines == load_suite("quick").pipelines
