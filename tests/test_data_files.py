"""`data=files` names its files as a list or as one comma-separated string: both give the same
files, from the command line as from Python."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from inattn.config import CONF_DIR
from inattn.data.files import expand, split_patterns
from inattn.errors import DataError
from tests.data_helpers import write_docs


@pytest.fixture
def files(tmp_path, monkeypatch) -> list[Path]:
    """a.txt and b/doc00..02.txt, with the test run from their folder (relative paths)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("one document\n")
    return [Path("a.txt"), *(p.relative_to(tmp_path) for p in write_docs(tmp_path / "b", 3))]


def test_comma_string_and_list_name_the_same_files(files):
    as_list = expand(["a.txt", "b/*.txt"], "data.train_files")
    assert as_list == sorted(files)
    assert expand("a.txt,b/*.txt", "data.train_files") == as_list
    assert expand(" a.txt , b/*.txt ,", "data.train_files") == as_list  # spaces, a trailing comma


@pytest.mark.parametrize(
    "override",
    ["data.train_files='a.txt,b/*.txt'", "data.train_files=[a.txt,b/*.txt]"],
    ids=["comma string", "list"],
)
def test_both_command_line_forms_compose_to_the_same_files(files, override):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data=files", override])
    value = OmegaConf.to_container(cfg.data, resolve=True)["train_files"]
    assert expand(value, "data.train_files") == sorted(files)


def test_a_file_whose_name_has_a_comma_is_that_file(files):
    Path("x,y.txt").write_text("text\n")
    assert split_patterns("x,y.txt") == ["x,y.txt"]
    assert expand("x,y.txt", "data.train_files") == [Path("x,y.txt")]


def test_a_part_that_matches_nothing_is_named(files):
    with pytest.raises(DataError, match=r"data.train_files: no file matches 'c/\*.txt'"):
        expand("a.txt,c/*.txt", "data.train_files")
