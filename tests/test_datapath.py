"""Data paths are confined to the folders the host allows, special files are refused before they
are opened, and no error quotes a file's content (issue #19, item 2)."""
from __future__ import annotations

import json
import os

import pytest

import mixedbridge
from mixedbridge import cli
from mixedbridge.datapath import data_roots
from mixedbridge.errors import DataError, MixedBridgeError
from mixedbridge.jasp.request import run_request
from mixedbridge.serve import handle

SECRET = "db_host=10.0.0.7"
ROWS = "y,x,g\n" + "".join(f"{i % 5 + 0.5 * i},{i},g{i % 3}\n" for i in range(12))


def spec(path: str, formula: str = "y ~ x") -> dict:
    return {"analysis": "lm", "formula": formula, "data": {"path": path}}


@pytest.fixture
def root(tmp_path):
    """An allowed data folder with a good CSV, next to a folder of secrets outside it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text(ROWS)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "config.csv").write_text(f"{SECRET}\npassword=hunter2\n")
    (data / "settings.env").write_text(f"{SECRET}\npassword=hunter2\n")
    return data


def refused(doc: dict, root, *words: str) -> str:
    with pytest.raises(DataError) as info:
        mixedbridge.run(doc, data_root=root)
    err = info.value
    assert err.path == "/data/path"
    for w in words:
        assert w in err.message, err.message
    assert SECRET not in err.message and "hunter2" not in err.message
    return err.message


def test_a_csv_inside_the_folder_is_read(root):
    res = mixedbridge.run(spec(str(root / "rows.csv")), data_root=root)
    assert res.table("parameters").rows


def test_relative_paths_default_to_the_working_directory(root, monkeypatch):
    monkeypatch.chdir(root)
    assert mixedbridge.run(spec("rows.csv")).table("parameters").rows
    refused(spec("../secrets/config.csv"), None, "outside the folders")


@pytest.mark.parametrize("path", ["../secrets/config.csv", "/etc/passwd", "/etc/shadow", "/proc/self/environ",
                                  "rows.csv/../../secrets/config.csv"])
def test_paths_leading_outside_are_refused(root, monkeypatch, path):
    monkeypatch.chdir(root)
    message = refused(spec(path), root, "outside the folders", "--data-root")
    assert str(root) not in message, "the allowed folder is not disclosed"


def test_symbolic_links_are_followed_before_the_check(root, monkeypatch):
    monkeypatch.chdir(root)
    (root / "link.csv").symlink_to(root.parent / "secrets" / "config.csv")
    refused(spec("link.csv"), root, "outside the folders")
    (root / "env.csv").symlink_to(root / "settings.env")
    refused(spec("env.csv"), root, "not a CSV file")


def test_a_key_value_file_in_the_folder_is_not_data(root, monkeypatch):
    monkeypatch.chdir(root)
    refused(spec("settings.env"), root, "not a CSV file")
    refused(spec("settings.env", "y ~ db_host"), root, "not a CSV file")


def test_special_files_are_refused_before_opening(root, monkeypatch):
    monkeypatch.chdir(root)
    os.mkfifo(root / "pipe.csv")  # opening a FIFO would block: the check must not open it
    refused(spec("pipe.csv"), root, "not a regular file")
    (root / "folder.csv").mkdir()
    refused(spec("folder.csv"), root, "is a folder")
    refused(spec("."), root, "is a folder")


def test_system_folders_are_refused_even_when_allowed():
    with data_roots("/"):
        for path in ("/proc/self/environ", "/dev/zero", "/sys/kernel/notes"):
            with pytest.raises(DataError, match="system file"):
                mixedbridge.run(spec(path))


def test_empty_missing_and_malformed_files_say_so_without_quoting(root, monkeypatch):
    monkeypatch.chdir(root)
    (root / "empty.csv").write_text("")
    refused(spec("empty.csv"), root, "is empty")
    refused(spec("missing.csv"), root, "does not exist")
    (root / "ragged.csv").write_text(f"a,b\n1,2\n{SECRET},x,y,z\n")
    refused(spec("ragged.csv"), root, "not a well-formed CSV table", "line 3")
    (root / "latin1.csv").write_bytes("y,x\n1,caf\xe9\n".encode("latin-1"))
    refused(spec("latin1.csv"), root, "not UTF-8")


def test_unreadable_file(root, monkeypatch):
    """A file the process may not open (as for a non-root user with mode 000; root reads any mode,
    so the refusal of the operating system is stood in for)."""
    from mixedbridge import datapath

    monkeypatch.chdir(root)
    (root / "locked.csv").write_text(ROWS)

    def denied(path, flags, *args):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datapath.os, "open", denied)
    refused(spec("locked.csv"), root, "cannot be read")


@pytest.mark.parametrize("bad", [5, "", "a\x00b.csv", ["x.csv"]])
def test_a_path_that_is_not_a_file_name(bad, root):
    """A JASP request skips the spec schema, so load_data meets these raw."""
    doc = run_request({"jasp": "lm", "options": {}, "data": {"path": bad}})
    assert doc["status"] == "error" and doc["error"]["path"] == "/data/path"


def test_jasp_request_cannot_read_the_environment():
    doc = run_request({"jasp": "lmm", "options": {}, "data": {"path": "/proc/self/environ"}})
    assert doc["status"] == "error" and "outside the folders" in doc["error"]["errorMessage"]
    text = json.dumps(doc)
    assert not any(len(v) > 6 and v in text for v in os.environ.values())


def test_serve_confines_to_its_root(root, monkeypatch):
    monkeypatch.chdir(root)
    answer = handle(json.dumps({"id": 1, "spec": spec("../secrets/config.csv", "y ~ db_host")}))
    assert answer["id"] == 1 and answer["error"]["path"] == "/data/path"
    assert SECRET not in json.dumps(answer)


def test_data_root_must_be_folders():
    with pytest.raises(MixedBridgeError, match="data_root"):
        mixedbridge.run(spec("x.csv"), data_root=5)


def test_cli_default_root_is_the_spec_folder(root, capsys):
    (root / "ok.json").write_text(json.dumps(spec("rows.csv")))
    (root / "out.json").write_text(json.dumps(spec("../secrets/config.csv", "y ~ db_host")))
    assert cli.main(["run", str(root / "ok.json")]) == 0
    assert cli.main(["run", str(root / "out.json"), "--format", "json"]) == 2
    out = capsys.readouterr().out
    assert "outside the folders" in out and SECRET not in out
    assert cli.main(["validate", str(root / "out.json")]) == 2
    assert SECRET not in capsys.readouterr().err


def test_cli_data_root_widens_the_folder(root, capsys):
    (root.parent / "secrets" / "rows.csv").write_text(ROWS)
    (root / "other.json").write_text(json.dumps(spec("../secrets/rows.csv")))
    assert cli.main(["validate", str(root / "other.json")]) == 2
    assert cli.main(["validate", str(root / "other.json"), "--data-root", str(root.parent)]) == 0


def test_a_file_past_the_size_limit_is_refused_before_reading(root, monkeypatch):
    """A 2 GiB sparse file (no disk used) claims more than the 1 GiB limit; a gzip bomb cannot be
    named *.csv.gz, and a compressed file named *.csv is read as text, never expanded."""
    monkeypatch.chdir(root)
    with open(root / "huge.csv", "wb") as fh:
        fh.truncate(2 * 1024**3)
    refused(spec("huge.csv"), root, "2048 MiB", "limit of 1024 MiB", "MIXEDBRIDGE_MAX_DATA_MB")
    monkeypatch.setenv("MIXEDBRIDGE_MAX_DATA_MB", "0.0001")
    refused(spec("rows.csv"), root, "more than the limit")
    for bad in ("-1", "lots", "nan"):
        monkeypatch.setenv("MIXEDBRIDGE_MAX_DATA_MB", bad)
        refused(spec("rows.csv"), root, "MIXEDBRIDGE_MAX_DATA_MB must be a positive number")
    monkeypatch.delenv("MIXEDBRIDGE_MAX_DATA_MB")
    (root / "bomb.csv.gz").write_bytes(b"\x1f\x8b" + b"\0" * 64)
    refused(spec("bomb.csv.gz"), root, "not a CSV file")


def test_errors_about_a_data_file_do_not_quote_its_content(root, monkeypatch):
    """A key=value file named *.csv inside an allowed folder: an unknown column or a levels error
    names only what the spec gave, never the file's header or values (issue #19, item 2)."""
    monkeypatch.chdir(root)
    (root / "config.csv").write_text(f"{SECRET}\npassword=hunter2\nuser=admin\n")
    refused_at = {"/formula": spec("config.csv"),
                  f"/levels/{SECRET}": {**spec("config.csv", f"y ~ x + (1 | `{SECRET}`)"),
                                        "analysis": "lmm", "levels": {SECRET: ["nope"]}}}
    for path, doc in refused_at.items():
        with pytest.raises(DataError) as info:
            mixedbridge.run(doc, data_root=root)
        message = info.value.message
        assert "hunter2" not in message and "admin" not in message, message
        assert "not listed for data read from a file" in message, message
        if path == "/formula":  # the spec did not name the file's header: it is not quoted either
            assert SECRET not in message, message
    doc = run_request({"jasp": "lm", "options": {}, "data": {"path": "config.csv"}}, base=root)
    assert "hunter2" not in json.dumps(doc) and "admin" not in json.dumps(doc)
