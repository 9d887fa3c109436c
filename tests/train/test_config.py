import pytest

from trainlab.errors import ConfigError
from trainlab.train import setup
from trainlab.train.config import OptimConfig, RunConfig, _optimizer_keys, apply_overrides, load_config, parse_value


def test_quickstart_example_loads():
    cfg = load_config("examples/quickstart.toml")
    assert cfg.name == "quickstart" and cfg.optim.name == "sgd" and cfg.optim.momentum == 0.9
    assert cfg.model.hidden == [256, 256] and cfg.train.epochs == 20


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key \(did you mean 'optim\.lr'\?\)"):
        load_config({"optim": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key \(did you mean 'train\.epochs'\?\)"):
        load_config({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match=r"modle: unknown key \(did you mean 'model'\?\)"):
        load_config({"modle": {}})


def test_wrong_types_and_ranges_name_the_key():
    with pytest.raises(ConfigError, match=r"train\.epochs: .*integer.*got 'ten'"):
        load_config({"train": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"model\.dropout: .*less than 1"):
        load_config({"model": {"dropout": 1.5}})
    with pytest.raises(ConfigError, match=r"data\.batch_size: .*greater than 0"):
        load_config({"data": {"batch_size": 0}})


def test_unknown_registry_names_list_the_choices():
    with pytest.raises(
        ConfigError, match=r"optim\.name: unknown value 'adm' \(did you mean 'adam'\?\); choose one of: .*adamw"
    ):
        load_config({"optim": {"name": "adm"}})
    with pytest.raises(ConfigError, match=r"model\.name: unknown value 'mpl'"):
        load_config({"model": {"name": "mpl"}})


def test_overrides_are_parsed_as_toml():
    assert parse_value("0.1") == 0.1 and parse_value("[64, 64]") == [64, 64]
    assert parse_value("true") is True and parse_value("adam") == "adam" and parse_value('"x y"') == "x y"
    cfg = load_config(
        "examples/quickstart.toml",
        [
            "optim.lr=0.05",
            "model.hidden=[8,8]",
            "optim.name=adam",
            "~optim.momentum",
            "train.early_stopping.patience=3",
        ],
    )
    assert cfg.optim.lr == 0.05 and cfg.model.hidden == [8, 8] and cfg.optim.name == "adam"
    assert cfg.train.early_stopping.patience == 3
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=1"])


def test_override_returns_a_validated_copy_and_hash_ignores_name():
    cfg = RunConfig()
    other = cfg.override({"optim.lr": 0.5})
    assert cfg.optim.lr == 0.01 and other.optim.lr == 0.5
    assert cfg.hash() == cfg.override({"name": "x"}).hash() != other.hash()
    # what orchestrators read ([compare], [search]) does not change what a run computes
    assert cfg.hash() == cfg.override({"compare": {"target": 0.5}, "search": {"trials": 3}}).hash()
    with pytest.raises(ConfigError, match=r"optim\.lr: .*greater than or equal to 0"):
        cfg.override({"optim.lr": -1})
    # an optional section left unset (None) is started by a dotted key, the rest from its defaults
    assert cfg.train.early_stopping is None
    stopped = cfg.override({"train.early_stopping.patience": 3})
    assert stopped.train.early_stopping.patience == 3 and stopped.train.early_stopping.monitor == "val_loss"


def test_linear_scaling_rule():
    cfg = load_config(
        {"data": {"batch_size": 1024}, "optim": {"lr": 0.1, "scale_lr": "linear", "base_batch_size": 256}}
    )
    assert cfg.optim.scaled_lr(1024) == pytest.approx(0.4)
    assert cfg.override({"optim.scale_lr": "sqrt"}).optim.scaled_lr(1024) == pytest.approx(0.2)


def test_config_round_trips_through_dict():
    cfg = load_config({"schedule": {"name": "cosine", "min_lr": 0.001}, "train": {"early_stopping": {"patience": 2}}})
    again = load_config(cfg.to_dict())
    assert again == cfg and again.schedule.options() == {"min_lr": 0.001}


def test_missing_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_label_smoothing_with_distillation_is_rejected():
    with pytest.raises(ConfigError, match="label_smoothing cannot be combined with distill.teacher"):
        load_config({"train": {"label_smoothing": 0.1}, "distill": {"teacher": "abc"}})


def test_an_option_the_optimizer_does_not_take_is_named_at_load_time_and_can_be_removed():
    with pytest.raises(ConfigError, match=r"optim\.momentum: adam does not take 'momentum'.*~optim\.momentum"):
        load_config("examples/quickstart.toml", ["optim.name=adam"])
    cfg = load_config("examples/quickstart.toml", ["optim.name=adam", "~optim.momentum"])
    assert cfg.optim.name == "adam" and cfg.optim.momentum is None
    assert apply_overrides({"a": {"b": 1, "c": 2}}, ["~a.b"]) == {"a": {"c": 2}}
    with pytest.raises(ConfigError, match="no key 'optim.nothing' to remove"):
        load_config("examples/quickstart.toml", ["~optim.nothing"])


def test_optim_keys_come_from_the_optimizers_signatures():
    """[optim] takes every keyword argument of every trainlab optimizer — read from the
    constructors, not a copy — typed by its annotation; the lab's own keys stay fields."""
    import inspect

    import trainlab.optim as O

    for name in O.OPTIMIZERS:
        signature = inspect.signature(O._lookup(name).__init__)
        for key in signature.parameters:
            if key in ("self", "params", "lr"):
                continue
            assert OptimConfig.model_fields.get(key) is None  # not a third copy
            assert f"optim.{key}" in _optimizer_keys()
    cfg = load_config(
        {
            "optim": {
                "name": "nadam",
                "lr": 0.002,
                "momentum_decay": 0.002,
                "decoupled_weight_decay": True,
                "betas": [0.8, 0.9],
            }
        }
    )
    assert cfg.optim.options() == {
        "lr": 0.002,
        "momentum_decay": 0.002,
        "decoupled_weight_decay": True,
        "betas": (0.8, 0.9),
    }
    assert load_config({"optim": {"name": "sgd", "fused": False, "momentum": 1}}).optim.options() == {
        "lr": 0.01,
        "fused": False,
        "momentum": 1.0,
    }
    # the config's option reaches the optimizer's param group
    s = setup(
        {"data": {"name": "spirals", "n_samples": 200}, "model": {"hidden": [8]}, "optim": cfg.optim.model_dump()}
    )
    group = s.optimizer.param_groups[0]
    assert group["momentum_decay"] == 0.002 and group["decoupled_weight_decay"] is True and group["betas"] == (0.8, 0.9)


def test_optim_key_errors_name_the_key_with_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"^invalid config: optim\.momentun: unknown key \(did you mean 'optim\.momentum'\?\)$"
    ):
        load_config({"optim": {"momentun": 0.9}})
    with pytest.raises(ConfigError, match=r"optim\.momentum_decay: sgd does not take 'momentum_decay'"):
        load_config({"optim": {"name": "sgd", "momentum_decay": 0.1}})
    with pytest.raises(ConfigError, match=r"optim\.fused: Input should be a valid boolean.*got 'maybe'"):
        load_config({"optim": {"fused": "maybe"}})
    with pytest.raises(ConfigError, match=r"optim\.betas: .*got 3"):
        load_config({"optim": {"name": "adam", "betas": 3}})
    assert load_config({}).optim.nesterov is None  # an option not set reads as None
    with pytest.raises(AttributeError):
        load_config({}).optim.not_an_option  # noqa: B018
