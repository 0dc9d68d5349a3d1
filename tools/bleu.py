#!/usr/bin/env python3
"""Score a hypothesis file against a reference file: sacreBLEU BLEU and chrF, as
``seq2seq evaluate`` prints them.  Usage: python tools/bleu.py HYP REF [--json]"""

from __future__ import annotations

import argparse
import sys

from seq2seq.data.readers import DataError, read_lines
from seq2seq.evaluate import score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("hyp")
    parser.add_argument("ref")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        hyps, refs = read_lines(args.hyp), read_lines(args.ref)
        if len(hyps) != len(refs):
            raise DataError(f"{args.hyp} has {len(hyps)} lines but {args.ref} has {len(refs)}")
    except DataError as err:
        print(f"bleu.py: error: {err}", file=sys.stderr)
        return 2
    result = score(hyps, refs)
    print(result.json() if args.json else result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
