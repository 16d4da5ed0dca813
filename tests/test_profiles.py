"""Every parameter profile gives valid configs for every stage, checked without running them.

profiles/paper.yaml is meant for a GPU, so the pipeline test cannot run it; this catches a
wrong key or an impossible combination (e.g. a crop size ResNet-18 cannot take) before a
long run does.
"""

from pathlib import Path

import pytest
import yaml

from siamlib.data.synthetic import SyntheticConfig
from siamlib.experiments import count_parameters, variant_configs
from test_pipeline import merge

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(path.stem for path in (ROOT / "profiles").glob("*.yaml"))


def profile_params(name: str) -> dict:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    return merge(base, yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text()))


def test_profiles_found():
    assert {"tiny", "full", "paper"} <= set(PROFILES)


@pytest.mark.parametrize("name", ["default", *PROFILES])
def test_profile_builds_every_config(name):
    if name == "default":
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
    else:
        params = profile_params(name)
    SyntheticConfig.from_dict(params["synthetic"])
    image_size = params["preprocess"]["image_size"]
    ablation = params["ablation"]
    unknown = sorted(set(ablation["run"]) - set(ablation["variants"]))
    assert not unknown, f"{name}: ablation.run names undefined variants {unknown}"
    for variant in ablation["run"]:
        model_config, _ = variant_configs(
            params["model"], params["train"], ablation["variants"][variant], image_size,
            ablation["epochs"], ablation["patience"],
        )
        if model_config.backbone == "small":
            assert count_parameters(model_config) > 0
    curve = params["learning_curve"]
    assert all(0 < fraction <= 1 for fraction in curve["fractions"])
    assert curve["num_folds"] <= params["splits"]["num_folds"]
    assert ablation["num_folds"] <= params["splits"]["num_folds"]
