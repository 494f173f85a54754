"""Peer benchmark: the same GPT shape trained with PyTorch DistributedDataParallel over Gloo.

Started by parallax (DdpPeer, through PeerJob) with /usr/bin/python3 (Debian python3-torch),
once per node: this node's ranks are rank-offset .. rank-offset + local-ranks - 1 of world,
joined at master-addr:port, Gloo bound to the interface that holds node-addr; one intra-op
thread each. The model mirrors parallax's Gpt (untied embeddings, separate Q/K/V,
pre-LayerNorm, exact GELU, AdamW on every tensor). Every rank prints one JSON line
{"rank": r, "node": node-addr, "ifname": the interface Gloo bound, "stepMs": [...],
"loss": [...]}: per-step wall time of a barrier-free DDP step, the all-reduce inside
backward synchronising the ranks, so that the caller takes the slowest rank per step, as
it does for parallax's own ranks.
"""
import argparse
import json
import math
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


def build(torch, layers, hidden, heads, vocab, seq):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(hidden)
            self.q = nn.Linear(hidden, hidden)
            self.k = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, hidden)
            self.o = nn.Linear(hidden, hidden)
            self.ln2 = nn.LayerNorm(hidden)
            self.fc1 = nn.Linear(hidden, 4 * hidden)
            self.fc2 = nn.Linear(4 * hidden, hidden)

        def forward(self, x):
            b, t, h = x.shape
            hd = h // heads
            a = self.ln1(x)
            q = self.q(a).view(b, t, heads, hd).transpose(1, 2)
            k = self.k(a).view(b, t, heads, hd).transpose(1, 2)
            v = self.v(a).view(b, t, heads, hd).transpose(1, 2)
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            y = (s.softmax(-1) @ v).transpose(1, 2).contiguous().view(b, t, h)
            x = x + self.o(y)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab, hidden)
            self.wpe = nn.Embedding(seq, hidden)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.lnf = nn.LayerNorm(hidden)
            self.head = nn.Linear(hidden, vocab, bias=False)

        def forward(self, idx, targets):
            t = idx.shape[1]
            x = self.wte(idx) + self.wpe(torch.arange(t))
            for blk in self.blocks:
                x = blk(x)
            logits = self.head(self.lnf(x))
            return F.cross_entropy(logits.view(-1, vocab), targets.view(-1))

    return Gpt()


def rank_main(local, args):
    rank = args.rank_offset + local
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    dist.init_process_group("gloo", init_method=f"tcp://{args.master_addr}:{args.port}", rank=rank, world_size=args.world)
    model = DDP(build(torch, args.layers, args.hidden, args.heads, args.vocab, args.seq))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    rows = args.batch // args.world
    g = torch.Generator().manual_seed(args.seed + rank)
    times, losses = [], []
    for step in range(args.steps):
        idx = torch.randint(0, args.vocab, (rows, args.seq), generator=g)
        tgt = torch.randint(0, args.vocab, (rows, args.seq), generator=g)
        t0 = time.perf_counter()
        loss = model(idx, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t0) * 1000.0)
        losses.append(loss.item())
    sys.stdout.write(json.dumps({"rank": rank, "node": args.node_addr, "ifname": os.environ.get("GLOO_SOCKET_IFNAME", ""),
                                 "stepMs": times, "loss": losses}) + "\n")
    sys.stdout.flush()
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    for k in ("world", "port", "rank-offset", "local-ranks", "layers", "hidden", "heads", "vocab", "seq", "batch", "steps", "seed"):
        p.add_argument("--" + k, type=int, required=True)
    p.add_argument("--master-addr", required=True)
    p.add_argument("--node-addr", required=True)
    args = p.parse_args()
    ifname = interface_of(args.node_addr)
    if ifname:
        os.environ["GLOO_SOCKET_IFNAME"] = ifname   # the spawned ranks inherit it
    import torch.multiprocessing as mp
    mp.start_processes(rank_main, args=(args,), nprocs=args.local_ranks, start_method="spawn")


if __name__ == "__main__":
    main()
