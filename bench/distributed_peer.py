"""One rank of `bench distributed` (PyTorch): the port of our pre-training model (models_peer.py)
trained with torch.nn.parallel.DistributedDataParallel over Gloo, or in one process.

Started like a torchrun worker (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) with BENCH_SPEC (the
same JSON as bench/distributed_worker.ts). Answers JSON lines on stdin: {"cmd": "steps", "n": N}
-> the seconds of each step, DDP's own communication timings and the bytes this process sent;
{"cmd": "quit"}.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import models_peer  # noqa: E402


def bytes_written():
    with open("/proc/self/io") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("wchar:"))


def main():
    spec = json.loads(os.environ["BENCH_SPEC"])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if world > 1:
        dist.init_process_group("gloo")
    config = spec["config"]
    model = models_peer.PretrainingModel(config)
    for m in model.modules():
        if isinstance(m, models_peer.Moe):
            m.dispatch = spec.get("dispatch", "masked")  # the reference's one-hot einsums, or index gathers
    weights = models_peer.load_safetensors(spec["weights"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name])
    batch = models_peer.load_safetensors(spec["batch"])
    per_rank = spec["batchSize"] // world
    batch = {k: v[rank * per_rank:(rank + 1) * per_rank].contiguous() for k, v in batch.items()}
    ddp = DistributedDataParallel(model) if world > 1 else model  # bucket_cap_mb: DDP's default 25
    if world > 1:
        ddp._set_ddp_runtime_logging_sample_rate(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, foreach=True)
    model.train()
    print(json.dumps({"ready": True, "rank": rank, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        reply = {"seconds": [], "comm": [], "bytesSent": 0, "loss": None}
        before = bytes_written()
        for _ in range(int(req.get("n", 1))):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = ddp(batch)[0]
            loss.backward()
            opt.step()
            reply["seconds"].append(time.perf_counter() - t0)
            reply["loss"] = loss.item()
            if world > 1:
                d = ddp._get_ddp_logging_data()
                # DDP's reducer timings of this iteration, in nanoseconds.
                reply["comm"].append({"commMs": d.get("backward_comm_time", 0) / 1e6,
                                      "overlapMs": d.get("backward_compute_comm_overlap_time", 0) / 1e6})
        reply["bytesSent"] = bytes_written() - before
        print(json.dumps(reply), flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
