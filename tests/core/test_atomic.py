import pytest

from cascope.errors import OutputError
from cascope.io import atomic_output, check_output


def test_success_renames_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.tif"
    with atomic_output(target) as tmp:
        assert tmp.suffix == ".tif" and tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(OutputError, match="--force"), atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "old"
    with atomic_output(target, force=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_output_may_never_be_an_input(tmp_path):
    source = tmp_path / "movie.tif"
    source.write_bytes(b"data")
    with pytest.raises(OutputError, match="overwrite the input"):
        check_output(tmp_path / "." / "movie.tif", inputs=[source], force=True)
    assert source.read_bytes() == b"data"


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(OutputError, match="nothing was written"), atomic_output(tmp_path / "o.tif"):
        pass
    assert list(tmp_path.iterdir()) == []
