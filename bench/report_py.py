#!/usr/bin/env python3
"""Python side of bench/run.py's report comparison: one process, one tool, timed in parts.

    python bench/report_py.py torchinfo|fvcore

What a user of that tool runs to size ResNet-152: torchinfo.summary(model, (1, 3, 224, 224))
(prints its table, as it does by default), or fvcore's FlopCountAnalysis(model, x).total()
(traces the model). Prints one JSON object with the seconds spent importing (torch,
torchvision and the tool), building torchvision.models.resnet152(), and in the call itself.
"""

import json
import sys
import time


def main():
    tool = sys.argv[1]
    t0 = time.perf_counter()
    import torch
    import torchvision

    if tool == "torchinfo":
        import torchinfo
    elif tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis
    else:
        sys.exit(f"unknown tool {tool}")
    t1 = time.perf_counter()
    model = torchvision.models.resnet152()
    t2 = time.perf_counter()
    if tool == "torchinfo":
        torchinfo.summary(model, (1, 3, 224, 224))
    else:
        import logging

        logging.disable(logging.WARNING)  # fvcore warns about every op it does not count
        FlopCountAnalysis(model, torch.randn(1, 3, 224, 224)).total()
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "model_s": t2 - t1, "call_s": t3 - t2}), file=sys.stderr)


if __name__ == "__main__":
    main()
