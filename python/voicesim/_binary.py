"""Where the `voicesim` command is: the one this wheel installed, else one on PATH."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path


class BinaryNotFound(RuntimeError):
    """The `voicesim` command is nowhere to be found."""


def find_binary() -> Path:
    """The `voicesim` binary: `$VOICESIM_BIN`, else the one installed beside this package
    (`pip install voicesim` puts it in the environment's scripts folder), else `voicesim` on
    PATH."""
    exe = "voicesim" + (".exe" if sys.platform == "win32" else "")
    named = os.environ.get("VOICESIM_BIN")
    if named:
        path = Path(named)
        if path.is_file():
            return path
        raise BinaryNotFound(f"VOICESIM_BIN names {named}, which is not a file")
    schemes = [sysconfig.get_default_scheme()]
    user = f"{os.name}_user"
    if user in sysconfig.get_scheme_names():
        schemes.append(user)
    for scheme in schemes:
        path = Path(sysconfig.get_path("scripts", scheme=scheme)) / exe
        if path.is_file():
            return path
    # A venv's scripts folder, when Python runs from it without activation.
    path = Path(sys.executable).parent / exe
    if path.is_file():
        return path
    found = shutil.which(exe)
    if found:
        return Path(found)
    raise BinaryNotFound(
        "the voicesim command is not installed: `pip install voicesim` puts it on PATH, or set "
        "VOICESIM_BIN to a voicesim binary (from a source checkout: `make build`, then "
        "target/release/voicesim)"
    )
