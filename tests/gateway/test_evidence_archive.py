"""The hash-chained evidence archive and ``coldchain verify-archive``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.verify_archive import main as verify_archive
from coldchain.signing import sign
from gateway.archive import EvidenceArchive

KEY = bytes(range(32))


def _message(seq: int, key: bytes = KEY) -> tuple[str, str, int]:
    body = {
        "v": 1,
        "crate": "C-0042",
        "seq": seq,
        "ts": 1_764_086_400_000 + seq,
        "readings": [{"sensor": "probe1", "value_c": -180.5}],
    }
    body["sig"] = sign(body, key)
    return "coldchain/v1/crates/C-0042/telemetry", json.dumps(body), 1_764_086_400_500 + seq


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive of five signed messages written in two batches, with the crate's key beside it."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "C-0042.key").write_text(KEY.hex())
    path = tmp_path / "archive.jsonl"
    writer = EvidenceArchive(path)
    writer.append([_message(1), _message(2)])
    writer.close()
    writer = EvidenceArchive(path)  # a restart continues the same chain
    writer.append([_message(3), _message(4), _message(5)])
    writer.close()
    return path


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = verify_archive([str(path), "--keys-dir", str(path.parent / "keys")])
    return code, capsys.readouterr().out


def test_intact_archive_verifies(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An untouched archive verifies across a writer restart, signatures included."""
    assert _check(archive, capsys) == (0, f"{archive}: intact, 5 lines, hash chain and signatures verified\n")


def test_altered_line_is_reported(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Changing one value in line 3 breaks the chain exactly there."""
    lines = archive.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"-180.5", b"-190.5")
    archive.write_bytes(b"".join(lines))
    code, out = _check(archive, capsys)
    assert (code, "BROKEN at line 3" in out, "altered" in out) == (1, True, True)


def test_removed_line_is_reported(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Deleting line 2 is noticed at the line that followed it."""
    lines = archive.read_bytes().splitlines(keepends=True)
    archive.write_bytes(b"".join(lines[:1] + lines[2:]))
    code, out = _check(archive, capsys)
    assert (code, "BROKEN at line 2" in out, "removed" in out) == (1, True, True)


def test_forged_signature_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A message signed with another key breaks verification even though its chain link is sound."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "C-0042.key").write_text(KEY.hex())
    writer = EvidenceArchive(tmp_path / "a.jsonl")
    writer.append([_message(1), _message(2, key=b"forger")])
    writer.close()
    code, out = _check(tmp_path / "a.jsonl", capsys)
    assert (code, "BROKEN at line 2" in out, "signature" in out) == (1, True, True)


def test_half_written_line_is_cut_on_reopen(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A crash mid-append leaves half a line; reopening cuts it and the chain continues intact."""
    with archive.open("ab") as handle:
        handle.write(b'{"hash":"abc","payl')
    writer = EvidenceArchive(archive)
    writer.append([_message(6)])
    writer.close()
    assert _check(archive, capsys) == (0, f"{archive}: intact, 6 lines, hash chain and signatures verified\n")
