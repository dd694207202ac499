"""PyTorch eager peer for `sparse-mixer bench ops`.

Reads one JSON request per line on stdin and answers one JSON line on stdout, so the Node
benchmark can interleave its own rounds with these and both see the same machine state.
Request: {"op": NAME, "iters": N, "threads": T}  ->  {"op": NAME, "us": MEAN_MICROSECONDS}
"""
import json
import sys
import time

import torch


def make_ops():
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)
    a, b = r(32, 32), r(32, 32)
    m1, m2 = r(64, 64), r(64, 64)
    x, w, bias = r(16, 64), r(64, 64), r(64)
    ln_w, ln_b = torch.ones(64), torch.zeros(64)
    big1, big2 = r(512, 512), r(512, 512)
    wg = r(64, 64).requires_grad_()
    bg = torch.zeros(64).requires_grad_()

    def backward_small():
        loss = torch.tanh(torch.nn.functional.linear(x, wg, bg)).sum()
        loss.backward()
        wg.grad = None
        bg.grad = None

    return {
        "add": lambda: a + b,
        "mul": lambda: a * b,
        "matmul_64": lambda: m1 @ m2,
        "linear": lambda: torch.nn.functional.linear(x, w, bias),
        "layer_norm": lambda: torch.nn.functional.layer_norm(x, (64,), ln_w, ln_b, 1e-12),
        "softmax": lambda: torch.softmax(x, -1),
        "gelu": lambda: torch.nn.functional.gelu(x, approximate="tanh"),
        "backward_small": backward_small,
        "matmul_512": lambda: big1 @ big2,
    }


def main():
    ops = make_ops()
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        torch.set_num_threads(int(req["threads"]))
        fn = ops[req["op"]]
        n = int(req["iters"])
        start = time.perf_counter()
        for _ in range(n):
            fn()
        us = (time.perf_counter() - start) / n * 1e6
        print(json.dumps({"op": req["op"], "us": us}), flush=True)


if __name__ == "__main__":
    main()
