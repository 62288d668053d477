#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""tidy: the project's own lint, run as a ctest test (STYLE B24).

Checks every tracked-or-new source file under the repository:
  - a one-line SPDX licence header near the top;
  - C lines of at most 100 columns;
  - no banned calls (sprintf, strcpy, rand, time, alloca, ...);
  - no leftover FIX-ME markers;
  - io_uring_* and clock_gettime only in the backend files that own them;
  - every .c file is named in a CMakeLists.txt;
  - the function-length ratchet: a C function longer than 70 lines must be
    listed in tools/tidy-long-functions.txt and may not grow past its entry.
Exit status 1 and one line per finding when anything is wrong.
"""
import os
import re
import subprocess
import sys

MAX_COLS = 100
MAX_FUNC_LINES = 70
SOURCE_DIRS = ["cmake", "common", "store", "raft", "placement", "web", "vstor", "tools", "integration",
               "packaging"]
BANNED = re.compile(r"(?<![\w.>])(sprintf|vsprintf|strcpy|strcat|gets|rand|srand|time|alloca|"
                    r"atoi|atol|strtok|asctime|ctime|gmtime|localtime)\s*\(")
# Calls allowed only in the files that own a backend (STYLE B18).
RESTRICTED = [
    (re.compile(r"\bio_uring_(?!prep_|sqe_set|cqe_get|get_sqe\b)\w+\s*\("),
     re.compile(r"(common/vs_ring\.c|store/store_disk_uring\.c|/tests?/|/fuzz/|/bench/)")),
    (re.compile(r"\bclock_gettime\s*\("),
     re.compile(r"(common/vs_clock\.c|common/vs_log\.c|/tests?/|/bench/)")),
]
SPDX = "SPDX-License-Identifier: GPL-3.0-or-later"


def list_files(root):
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
        files = [f for f in out.splitlines() if os.path.exists(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d in SOURCE_DIRS:
            for base, _, names in os.walk(os.path.join(root, d)):
                files += [os.path.relpath(os.path.join(base, n), root) for n in names]
    return sorted(f for f in files if f.split("/")[0] in SOURCE_DIRS or "/" not in f)


def strip_c_comments_and_strings(text):
    """Blank out comments and string literals, keeping line structure."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                  blank, text, flags=re.S)


def function_lengths(code):
    """Yield (name, first_line, length) for top-level functions (brace in column 0)."""
    lines = code.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("{") and i > 0:
            j = i - 1
            while j > 0 and "(" not in lines[j]:
                j -= 1
            m = re.search(r"(\w+)\s*\(", lines[j])
            start = i
            k = i + 1
            while k < len(lines) and not lines[k].startswith("}"):
                k += 1
            if m and "=" not in lines[j].split("(")[0]:
                yield m.group(1), start + 1, k - start - 1
            i = k
        i += 1


def load_allowlist(root):
    allow = {}
    path = os.path.join(root, "tools", "tidy-long-functions.txt")
    if os.path.exists(path):
        for line in open(path):
            line = line.split("#")[0].strip()
            if line:
                f, func, n = line.split()
                allow[(f, func)] = int(n)
    return allow


def check(root):
    problems = []
    files = list_files(root)
    allow = load_allowlist(root)
    cmake_text = ""
    for f in files:
        if f.endswith("CMakeLists.txt") or f.endswith(".cmake"):
            cmake_text += open(os.path.join(root, f)).read()
    for f in files:
        path = os.path.join(root, f)
        ext = os.path.splitext(f)[1]
        base = os.path.basename(f)
        if ext not in (".c", ".h", ".py", ".sh", ".cmake") and base != "CMakeLists.txt":
            continue
        try:
            text = open(path, encoding="utf-8").read()
        except UnicodeDecodeError:
            problems.append(f"{f}: not UTF-8")
            continue
        if SPDX not in "\n".join(text.split("\n")[:3]):
            problems.append(f"{f}:1: missing '{SPDX}' in the first lines")
        for n, line in enumerate(text.split("\n"), 1):
            if "FIX" + "ME" in line:
                problems.append(f"{f}:{n}: leftover FIX" + "ME")
        if ext not in (".c", ".h"):
            continue
        for n, line in enumerate(text.split("\n"), 1):
            if len(line) > MAX_COLS:
                problems.append(f"{f}:{n}: line is {len(line)} columns (max {MAX_COLS})")
        code = strip_c_comments_and_strings(text)
        for n, line in enumerate(code.split("\n"), 1):
            m = BANNED.search(line)
            if m:
                problems.append(f"{f}:{n}: banned call {m.group(1)}()")
            for pattern, allowed in RESTRICTED:
                m = pattern.search(line)
                if m and not allowed.search(f):
                    problems.append(f"{f}:{n}: {m.group(0).strip('( ')} belongs in a backend file")
        if ext == ".c" and base not in cmake_text:
            problems.append(f"{f}: not named in any CMakeLists.txt")
        for func, line, length in function_lengths(code):
            limit = allow.get((f, func), MAX_FUNC_LINES)
            if length > limit:
                problems.append(f"{f}:{line}: {func}() is {length} lines (limit {limit}); "
                                "split it (STYLE B5)")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"tidy: {len(problems)} problem(s)")
        return 1
    print("tidy: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
