"""Names that become paths stay inside their folder: ``export_parquet``'s ``config_name`` (and split names), and the
paths of a model card's data (``checkpoint_dir``, ``results_file``, ``template``) and a dataset card's ``builder``,
which ``render`` writes to. Real files in a temporary folder; a sibling file stands for everything outside."""

from __future__ import annotations

import pytest

from mmquant.safe_paths import check_path_component, confined_path

ESCAPES = ["../x", "..", ".", "a/b", "a/../../x", "/tmp/abs", "a\\b", "", "x\x00y"]


@pytest.fixture
def dataset():
    from datasets import Dataset, DatasetDict

    return DatasetDict({"train": Dataset.from_dict({"a": [1, 2, 3]}), "test": Dataset.from_dict({"a": [4]})})


@pytest.mark.parametrize("config_name", ESCAPES, ids=repr)
def test_export_parquet_config_name_confined(tmp_path, dataset, config_name):
    from mmquant.data.export import export_parquet

    out = tmp_path / "out"
    victim = tmp_path / "x" / "train-00000-of-00001.parquet"  # what a "../x" cleanup would delete
    victim.parent.mkdir()
    victim.write_bytes(b"keep me")
    with pytest.raises(ValueError, match=r"config_name=.*expected a single folder name"):
        export_parquet(dataset, out, config_name=config_name)
    assert victim.read_bytes() == b"keep me"
    assert not out.exists() or not any(out.rglob("*.parquet"))


@pytest.mark.parametrize("bad", [None, 3, ["a"]], ids=repr)
def test_export_parquet_config_name_type(tmp_path, dataset, bad):
    from mmquant.data.export import export_parquet

    with pytest.raises(TypeError, match="config_name=.*expected a string"):
        export_parquet(dataset, tmp_path, config_name=bad)


def test_export_parquet_split_names_confined(tmp_path):
    from datasets import Dataset, DatasetDict

    from mmquant.data.export import export_parquet

    evil = DatasetDict({"../../evil": Dataset.from_dict({"a": [1]})})
    with pytest.raises(ValueError, match="split name='../../evil'"):
        export_parquet(evil, tmp_path / "out", config_name="ok")
    assert not list(tmp_path.rglob("*evil*"))


def test_export_parquet_good_names_still_work(tmp_path, dataset):
    from mmquant.data.export import export_parquet, parquet_export_sizes

    paths = export_parquet(dataset, tmp_path / "out", config_name="quad4")
    assert all(p.parent == (tmp_path / "out" / "quad4").resolve() for p in paths)
    assert parquet_export_sizes(tmp_path / "out") == {"quad4": {"train": 3, "test": 1}}


def _card_repo(tmp_path, **changes):
    """A copy of the repository's card layout (hub_cards/ and the files one card names) with ``changes``."""
    import yaml

    from conftest import ROOT

    repo = tmp_path / "repo"
    (repo / "hub_cards").mkdir(parents=True)  # the template comes from the package unless the card names one
    data = yaml.safe_load((ROOT / "hub_cards" / "optvq-mnist.yaml").read_text()) | changes
    path = repo / "hub_cards" / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "key,value",
    [
        ("checkpoint_dir", "../outside"),
        ("checkpoint_dir", "../../../../../../tmp/outside"),
        ("checkpoint_dir", "/tmp/outside-abs"),
        ("results_file", "../secret.json"),
        ("template", "../../template.md"),
    ],
)
@pytest.mark.parametrize("command", ["render", "check"])
def test_model_card_paths_confined(tmp_path, key, value, command):
    from mmquant.hub.cards import main

    path = _card_repo(tmp_path, **{key: value})
    with pytest.raises(ValueError, match=rf"card data .*evil.yaml: {key}=.*outside .*expected a path inside it"):
        main([command, str(path)])
    assert not (tmp_path / "outside").exists() and not list(tmp_path.parent.glob("outside*"))


def test_model_card_data_not_a_mapping(tmp_path):
    from mmquant.hub.cards import load_card_data

    path = tmp_path / "hub_cards" / "list.yaml"
    path.parent.mkdir()
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a YAML mapping"):
        load_card_data(path)


@pytest.mark.parametrize("builder", ["../../evil", "a/b", "..", 7], ids=repr)
def test_dataset_card_builder_confined(tmp_path, builder):
    import yaml

    from conftest import ROOT
    from mmquant.hub.dataset_cards import load_dataset_card_data

    card_data = ROOT / "src" / "mmquant" / "dataset_scripts" / "caption_mnist" / "card_data.yaml"
    data = yaml.safe_load(card_data.read_text()) | {"builder": builder}
    path = tmp_path / "dataset_scripts" / "evil" / "card_data.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises((ValueError, TypeError), match="builder="):
        load_dataset_card_data(path)


def test_helpers(tmp_path):
    assert check_path_component("quad4", "n") == "quad4"
    assert confined_path(tmp_path, "a/../b", "p") == (tmp_path / "b").resolve()
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(ValueError, match="p='link/x': resolves to .* outside"):
        confined_path(tmp_path, "link/x", "p")  # a link out of the root counts as outside
