"""The top of a py-spy profile (`bench.peer --py-spy`): share of samples per thread, per
function where the sample was taken (self) and per function on the stack (inclusive).

    python -m bench.stacks /tmp/bench-peer-*/peer-*.stacks --top 25
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

#: py-spy's frame names end in `(file:line)`: the line is dropped to add up a function.
LINE = re.compile(r":\d+\)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", type=Path, help="py-spy record --format raw output.")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total = 0
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    skipped = 0
    for line in args.stacks.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            skipped += 1  # a frame name py-spy read torn (it can hold a newline)
            continue
        samples = int(count)
        thread, *frames = stack.split(";")
        functions = [LINE.sub(")", frame) for frame in frames]
        total += samples
        threads[re.sub(r" \(\d+\)", "", thread)] += samples
        if functions:
            own[functions[-1]] += samples
        for function in set(functions):
            inclusive[function] += samples
    print(f"{total} samples" + (f" ({skipped} torn lines skipped)" if skipped else ""))
    for title, counter in (("threads", threads), ("self", own), ("inclusive", inclusive)):
        print(f"-- {title}")
        for name, samples in counter.most_common(args.top):
            print(f"{samples / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
