"""The emulator's --snapshot holds raw subscription tokens: it is written 0600, atomically, and
never through a symlink (an existing 0644 file becomes 0600)."""

from __future__ import annotations

import os
import stat

from _exec import Emu, planned


def _mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_the_snapshot_is_written_0600(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    snap = tmp_path / "emu-snapshot.json"
    emu = Emu(ws, snapshot_path=snap)
    emu.run(ws, p)
    emu.emulator.close()
    assert b"TOKEN000001SECRET" in snap.read_bytes()        # why it matters: raw tokens
    assert _mode(snap) == 0o600
    os.chmod(snap, 0o644)                                    # one written by an older migrator
    emu = Emu(ws, snapshot_path=snap)
    assert len(emu.emulator.state.sends) == 3               # restored from it
    emu.emulator.close()
    assert _mode(snap) == 0o600
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".emu-snapshot")] == []   # no temp left


def test_the_snapshot_never_writes_through_a_symlink(ws, tmp_path):
    planned(ws, tmp_path, 2)
    target = tmp_path / "elsewhere.json"
    link = tmp_path / "snap.json"
    link.symlink_to(target)                                  # dangling: nothing to restore
    emu = Emu(ws, snapshot_path=link)
    emu.emulator.close()
    assert not target.exists()
    assert not link.is_symlink() and _mode(link) == 0o600
