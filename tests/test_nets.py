"""Network architectures: forward shapes over channels and input sizes, and the documented layouts."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pipelines.nets import build_net, list_nets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCHS = ["mlp", "lenet5", "alexnet-s", "vgg-s", "resnet-s", "cnn-small"]


def test_every_architecture_is_registered():
    assert set(ARCHS) <= set(list_nets())


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shapes_over_channels_and_sizes(arch):
    for c in (1, 3):
        for size in ((8, 8), (13, 13), (28, 28), (32, 32), (64, 64), (24, 40)):
            # Narrow widths keep this fast; the layout (and so the shape logic) is the same at any width.
            model = build_net(arch, in_channels=c, n_classes=7, size=size, width=16).eval()
            with torch.no_grad():
                out = model(torch.randn(2, c, *size))
            assert out.shape == (2, 7), (arch, c, size)
            assert torch.isfinite(out).all()


def test_lenet5_is_the_lecture_table():
    m = build_net("lenet5", in_channels=1, n_classes=10, size=(28, 28))
    convs = [x for x in m if isinstance(x, nn.Conv2d)]
    fcs = [x for x in m if isinstance(x, nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [(20, (5, 5), (2, 2)), (50, (5, 5), (2, 2))]
    assert [f.out_features for f in fcs] == [500, 10]
    assert sum(isinstance(x, nn.MaxPool2d) for x in m) == 2 and sum(isinstance(x, nn.ReLU) for x in m) == 3
    # 28×28 → two 2×2 pools → 50·7·7 inputs to FC-500.
    assert fcs[0].in_features == 50 * 7 * 7
    assert sum(p.numel() for p in m.parameters()) == 520 + 25050 + (2450 * 500 + 500) + 5010


def test_mlp_parameter_count():
    m = build_net("mlp", in_channels=1, n_classes=10, size=(28, 28), width=300)
    assert sum(p.numel() for p in m.parameters()) == 784 * 300 + 300 + 300 * 10 + 10


def test_resnet_s_is_resnet18_with_a_3x3_stem():
    ours = build_net("resnet-s", in_channels=3, n_classes=10, size=(32, 32))
    ref = torchvision.models.resnet18(num_classes=10)
    n_ours, n_ref = (sum(p.numel() for p in m.parameters()) for m in (ours, ref))
    assert n_ours == n_ref - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3  # only the stem differs
    blocks = [m for m in ours.modules() if isinstance(m, torchvision.models.resnet.BasicBlock)]
    assert len(blocks) == 8


def test_unknown_network_names_the_known_ones():
    with pytest.raises(KeyError, match="lenet5"):
        build_net("lenet", in_channels=1, n_classes=10, size=(28, 28))
