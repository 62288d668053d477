# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks that libvstor.so exports exactly the functions vstor.h declares."""
import re
import subprocess
import sys

lib, header = sys.argv[1], sys.argv[2]
out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                     check=True).stdout
exported = {line.split()[-1].split("@")[0] for line in out.splitlines()
            if line.split()[1:2] in (["T"], ["D"], ["B"], ["R"])}
declared = set(re.findall(r"\b(vstor_[a-z_]+)\s*\(", open(header).read()))
declared -= {"vstor_io_cb", "vstor_open_cb"}
extra, missing = exported - declared, declared - exported
if extra or missing:
    print(f"exported but not in vstor.h: {sorted(extra)}")
    print(f"in vstor.h but not exported: {sorted(missing)}")
    sys.exit(1)
print(f"libvstor.so exports the {len(exported)} functions of vstor.h and nothing else")
