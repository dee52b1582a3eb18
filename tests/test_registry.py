"""Registry: register / create / list with wildcards, unknown names, and `bench list --json`."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from pipelines import registry
from pipelines.registry import (
    UnknownPipelineError,
    create,
    derived_factory,
    get_spec,
    list_pipelines,
    register,
)


def test_foundation_pipelines_are_registered_with_metadata():
    names = list_pipelines()
    assert {"pixels-knn", "pixels-logreg", "cnn-small"} <= set(names)
    spec = get_spec("pixels-knn")
    assert (spec.family, spec.features, spec.classifier) == ("classical", "pixels", "knn")
    assert get_spec("cnn-small").family == "scratch"
    assert list_pipelines("pixels-*") == sorted(n for n in names if n.startswith("pixels-"))


def test_create_applies_params_and_rejects_unknown_ones():
    est = create("cnn-small", epochs=2, width=8)
    assert est.get_params()["epochs"] == 2 and est.get_params()["width"] == 8
    with pytest.raises(TypeError, match="no parameter"):
        create("cnn-small", epochz=2)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownPipelineError, match="pixels-knn"):
        get_spec("pixel-knn")


def test_register_decorator_and_unavailable(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register("toy-thing", family="classical", features="toy", classifier="none",
              unavailable_reason="needs a toy library")
    def toy(alpha: float = 1.0):
        """A toy."""
        return alpha

    assert "toy-thing" not in list_pipelines()
    assert "toy-thing" in list_pipelines(include_unavailable=True)
    with pytest.raises(registry.PipelineUnavailableError, match="needs a toy library"):
        create("toy-thing")


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert {"name", "family", "features", "classifier", "params"} <= set(by_name["pixels-knn"])
    assert by_name["cnn-small"]["params"]["epochs"] >= 1


def test_cli_unknown_pipeline_is_a_message_not_a_traceback(capsys):
    assert main(["run", "--dataset", "digits", "--pipeline", "pixel-knn"]) == 2
    err = capsys.readouterr().err
    assert "unknown pipeline 'pixel-knn'" in err and "pixels-knn" in err and "Traceback" not in err


def test_cli_unknown_dataset_suggests(capsys):
    assert main(["run", "--dataset", "mnist5", "--pipeline", "pixels-knn"]) == 2
    assert "mnist5k" in capsys.readouterr().err


def test_derived_factories_are_their_estimators_signatures():
    """Each scratch and fine-tune pipeline's parameters are its estimator's constructor arguments (derived, not
    re-typed): the catalogue's defaults are what the built estimator holds, the one fixed argument (network or
    backbone) is the pipeline's own, and a recipe naming no argument is refused."""
    from pipelines.training import NetClassifier

    for name in [*list_pipelines(family="scratch"), *list_pipelines("*-finetune")]:
        spec = get_spec(name)
        held = create(name).get_params()
        assert {k: held[k] for k in spec.defaults} == spec.defaults, name
        fixed = {"backbone"} if name.endswith("-finetune") else {"arch"}
        hidden = fixed | ({"width"} if name == "lenet5" else set())  # LeNet-5's widths are the paper's
        assert set(held) - set(spec.defaults) <= hidden, name
        if name.endswith("-finetune"):
            assert held["backbone"] == name.removesuffix("-finetune"), name
    with pytest.raises(TypeError, match="NetClassifier has no parameter"):
        derived_factory("toy", NetClassifier, "", fixed={"arch": "mlp"}, epochz=3)
