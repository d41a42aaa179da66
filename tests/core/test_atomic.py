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


def test_force_never_replaces_a_folder_that_holds_an_input(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    movie = project / "rec1.tif"
    movie.write_bytes(b"movie")
    for out in (project, tmp_path):  # the folder itself, and one further up
        with pytest.raises(OutputError, match="holds the input"):
            check_output(out, inputs=[movie], force=True)
    assert movie.read_bytes() == b"movie"


def test_force_replaces_only_like_with_like(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    # a file output onto a folder (e.g. `-o .`), and a folder output onto a file
    with pytest.raises(OutputError, match="is a folder, and the output is a file"):
        with atomic_output(folder, force=True) as tmp:
            tmp.write_text("table")
    single = tmp_path / "model"
    single.write_text("a file")
    with pytest.raises(OutputError, match="is a file, and the output is a folder"):
        with atomic_output(single, force=True) as tmp:
            tmp.mkdir()
    # a folder output onto a folder with other things in it
    with pytest.raises(OutputError, match="holds notes.txt, which the output would delete"):
        with atomic_output(folder, force=True) as tmp:
            tmp.mkdir()
            (tmp / "model.yaml").write_text("new")
    assert (folder / "notes.txt").read_text() == "mine" and single.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "results"]  # no temporaries
    # a rerun onto its own earlier output is replaced
    store = tmp_path / "out.zarr"
    for value in ("old", "new"):
        with atomic_output(store, force=True) as tmp:
            tmp.mkdir()
            (tmp / "zarr.json").write_text(value)
    assert (store / "zarr.json").read_text() == "new"


def test_cli_force_onto_a_folder_keeps_the_folder(tmp_path):
    import numpy as np
    import tifffile
    from typer.testing import CliRunner

    from cascope.cli import app

    data = np.random.default_rng(0).poisson(20, (6, 16, 16)).astype(np.uint16)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, data)
    runner = CliRunner()
    res = runner.invoke(app, ["qc", str(src), "--json", str(tmp_path), "--force"])
    assert res.exit_code != 0 and "holds the input" in str(res.exception)
    res = runner.invoke(
        app, ["benchmark", "denoise", str(src), "-m", "gaussian", "--json", str(src)]
    )
    assert res.exit_code != 0 and "overwrite the input" in str(res.exception)
    np.testing.assert_array_equal(tifffile.imread(src), data)


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    import fcntl
    import os

    target = tmp_path / "out.tif"
    lock = tmp_path / ".out.tif.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242")
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: conflicts as another process would
    try:
        with pytest.raises(OutputError, match=r"another cascope process \(pid 4242\)"):
            with atomic_output(target) as tmp:
                tmp.write_bytes(b"x")
    finally:
        os.close(fd)
    assert not target.exists()
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_stale_temporaries_of_a_dead_process_are_removed_live_ones_kept(tmp_path):
    import os

    dead = tmp_path / ".out.tif.999999999-part-0000.tif"
    dead.write_bytes(b"half")
    live = tmp_path / f".out.tif.{os.getppid()}-part-1111.tif"
    live.write_bytes(b"busy")
    with atomic_output(tmp_path / "out.tif") as tmp:
        tmp.write_bytes(b"x")
    assert not dead.exists() and live.exists()


def test_a_full_disk_is_an_output_error_naming_the_output(tmp_path):
    import errno

    target = tmp_path / "out.h5"
    with pytest.raises(OutputError, match="out.h5: no space left on device"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_a_folder_output_and_leaves_nothing_aside(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "a").write_text("old")
    with atomic_output(target, force=True) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("new")
    assert (target / "a").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]
