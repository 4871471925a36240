"""`python -m voicesim ...` runs the voicesim command."""

import os
import sys

from voicesim._binary import find_binary

if __name__ == "__main__":
    binary = os.fsdecode(find_binary())
    if sys.platform == "win32":
        import subprocess

        sys.exit(subprocess.call([binary, *sys.argv[1:]]))
    os.execvp(binary, [binary, *sys.argv[1:]])
