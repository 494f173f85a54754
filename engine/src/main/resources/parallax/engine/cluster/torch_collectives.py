"""Peer benchmark: the same collectives through PyTorch's torch.distributed over Gloo.

Started by parallax (CollectiveBenchmark) with /usr/bin/python3 (Debian python3-torch).
One process per rank on 127.0.0.1; each rank times every size, the median per rank is
reduced with MAX across ranks, and rank 0 prints one JSON line {"seconds": [...]}.
"""
import argparse
import json
import os
import sys
import time


def rank_main(rank, world, port, op, sizes, warmup, fixed_iters, out_path):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    medians = []
    for nbytes in sizes:
        iters = fixed_iters or (20 if nbytes <= (1 << 20) else 10 if nbytes <= (8 << 20) else 5)
        elems = max(world, nbytes // 4 // world * world)
        big = torch.zeros(elems)
        shard = torch.zeros(elems // world)
        if op == "allreduce":
            fn = lambda: dist.all_reduce(big)
        elif op == "allgather":
            fn = lambda: dist.all_gather(list(big.chunk(world)), shard)
        elif op == "reduce_scatter":
            # Gloo in PyTorch 1.13 has no reduce_scatter: all-reduce then keep the shard, as
            # users of that version did; marked in the report.
            fn = lambda: dist.all_reduce(big)
        elif op == "broadcast":
            fn = lambda: dist.broadcast(big, 0)
        else:
            raise SystemExit("unknown op " + op)
        for _ in range(warmup):
            fn()
        dist.barrier()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        times.sort()
        medians.append(times[iters // 2])
    m = torch.tensor(medians, dtype=torch.float64)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"seconds": m.tolist(), "torch": torch.__version__}, f)
    dist.barrier()
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--op", required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    import torch.multiprocessing as mp
    mp.spawn(rank_main, args=(a.world, a.port, a.op, sizes, a.warmup, a.iters, a.out), nprocs=a.world, join=True)
    with open(a.out) as f:
        sys.stdout.write(f.read() + "\n")


if __name__ == "__main__":
    main()
