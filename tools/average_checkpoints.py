#!/usr/bin/env python3
"""Average the last N checkpoints of a run into a new run directory that translate,
evaluate and the shell load like any other.

    python tools/average_checkpoints.py runs/multi30k_de_en -n 5 -o runs/multi30k_avg5
"""

from __future__ import annotations

import argparse
import sys

from seq2seq.averaging import average_checkpoints
from seq2seq.checkpoint import CheckpointError


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a run trained with train.keep_all_checkpoints=true")
    parser.add_argument(
        "-n", "--last", type=int, default=5, help="how many of the last checkpoints"
    )
    parser.add_argument("-o", "--output", required=True, help="the new run directory")
    args = parser.parse_args()
    try:
        out = average_checkpoints(args.run_dir, args.last, args.output)
    except CheckpointError as err:
        print(f"average_checkpoints.py: error: {err}", file=sys.stderr)
        return 2
    print(f"averaged the last {args.last} checkpoints of {args.run_dir} into {out.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
