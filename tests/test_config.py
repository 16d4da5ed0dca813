"""Building configs from params.yaml sections: unknown keys and wrong types fail by name."""

import pytest

from siamlib.data.synthetic import SyntheticConfig
from siamlib.models.siam import SIAMConfig
from siamlib.train import TrainConfig


def test_numeric_string_read_as_float():
    # PyYAML reads "learning_rate: 1e-3" as the string "1e-3".
    assert TrainConfig.from_dict({"learning_rate": "1e-3"}).learning_rate == 0.001


def test_list_becomes_tuple_of_ints():
    config = SIAMConfig.from_dict({"channels": [4, 8], "attention_after_block": 1})
    assert config.channels == (4, 8)


def test_optional_integer_accepts_none():
    assert TrainConfig.from_dict({"num_threads": None}).num_threads is None


@pytest.mark.parametrize(
    "cls, values, message",
    [
        (SIAMConfig, {"chanels": [4]}, "unknown SIAMConfig keys"),
        (SIAMConfig, {"hidden_size": "64"}, "SIAMConfig.hidden_size must be an integer"),
        (SIAMConfig, {"attention_after_block": 2.5}, "attention_after_block must be an integer"),
        (SIAMConfig, {"channels": 16}, "SIAMConfig.channels must be a list"),
        (SIAMConfig, {"channels": [16, "x"]}, r"channels\[1\] must be an integer"),
        (SIAMConfig, {"dropout": "a lot"}, "SIAMConfig.dropout must be a number"),
        (TrainConfig, {"epochs": 2.5}, "TrainConfig.epochs must be an integer"),
        (TrainConfig, {"horizontal_flip": "no"}, "horizontal_flip must be true or false"),
        (TrainConfig, {"loss": 1}, "TrainConfig.loss must be a string"),
        (TrainConfig, None, "must be a mapping"),
        (SyntheticConfig, {"num_subjects": True}, "num_subjects must be an integer"),
    ],
)
def test_invalid_settings_named(cls, values, message):
    with pytest.raises(ValueError, match=message):
        cls.from_dict(values)
