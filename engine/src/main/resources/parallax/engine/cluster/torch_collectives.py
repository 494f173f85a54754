"""Peer benchmark: the same collectives through PyTorch's torch.distributed over Gloo.

Started by parallax (CollectiveBenchmark, through PeerJob) with /usr/bin/python3 (Debian
python3-torch), once per node: this node's ranks are rank-offset .. rank-offset +
local-ranks - 1 of world, joined at master-addr:port, Gloo bound to the interface that
holds node-addr. Each rank times every size, the median per rank is reduced with MAX
across ranks, and rank 0 prints one JSON line {"seconds": [...]}.
"""
import argparse
import json
import os
import sys
import time


def interface_of(addr):
    """The network interface holding IPv4 address addr (Gloo binds it), or None."""
    import fcntl
    import socket
    import struct
    addr = socket.gethostbyname(addr)
    for _, name in socket.if_nameindex():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
            if socket.inet_ntoa(raw[20:24]) == addr:
                return name
        except OSError:
            pass
        finally:
            s.close()
    return None


def rank_main(local, a, sizes):
    rank, world, op, warmup, fixed_iters = a.rank_offset + local, a.world, a.op, a.warmup, a.iters
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{a.master_addr}:{a.port}", rank=rank, world_size=world)
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
        elif op == "alltoall":
            out = torch.zeros(elems)
            fn = lambda: dist.all_to_all_single(out, big)
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
        sys.stdout.write(json.dumps({"seconds": m.tolist(), "torch": torch.__version__}) + "\n")
        sys.stdout.flush()
    dist.barrier()
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--op", required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--master-addr", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rank-offset", type=int, required=True)
    p.add_argument("--local-ranks", type=int, required=True)
    p.add_argument("--node-addr", required=True)
    p.add_argument("--sizes", required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=0)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    ifname = interface_of(a.node_addr)
    if ifname:
        os.environ["GLOO_SOCKET_IFNAME"] = ifname   # the spawned ranks inherit it
    import torch.multiprocessing as mp
    mp.spawn(rank_main, args=(a, sizes), nprocs=a.local_ranks, join=True)


if __name__ == "__main__":
    main()
