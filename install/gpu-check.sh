#!/usr/bin/env bash
# install/gpu-check.sh: on a machine with NVIDIA GPUs, says in one run whether Parallax's
# CUDA path works there. It builds with the GPU natives if needed, prints what it found
# (driver, CUDA, GPUs, what the JVM sees), trains the tiny GPT on one GPU and checks it
# against the CPU run of the same seed (loss within 1e-4 relative over 10 steps, TF32 off),
# then data parallelism over every visible GPU (same check), then an NCCL all-reduce
# benchmark; it ends with one JSON summary line and a verdict line.
# Exit 0: every check passed; 1: a check failed; 2: no GPU here (nothing to check).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "parallax gpu-check: no GPU on this machine (nvidia-smi is missing or lists no GPU): nothing to check"
  exit 2
fi

check_java
check_maven
MAVEN_PROFILES=(-Pcuda)
build

cd "$PARALLAX_ROOT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cli=("$PARALLAX_ROOT/install/parallax")

say "driver and GPUs (nvidia-smi):"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader | sed 's/^/  /' >&2
gpus=$(nvidia-smi -L | wc -l)
"${cli[@]}" cluster gpus --json > "$tmp/gpus.json"
say "what the JVM sees: $(cat "$tmp/gpus.json")"

nodes() {  # nodes FILE DEVICES...: one local node with one rank per device
  local f="$1"; shift
  printf 'master_addr 127.0.0.1\nlocalhost slots=%d devices=%s\n' "$#" "$(IFS=,; echo "$*")" > "$f"
}

say "tiny GPT, 10 steps, on the CPU (reference)"
nodes "$tmp/cpu1" cpu
PARALLAX_NODES="$tmp/cpu1" "${cli[@]}" parallel --model tiny --steps 10 --seed 7 --json > "$tmp/cpu1.json"
say "tiny GPT, 10 steps, on cuda:0"
nodes "$tmp/gpu1" cuda:0
PARALLAX_NODES="$tmp/gpu1" "${cli[@]}" parallel --model tiny --steps 10 --seed 7 --json > "$tmp/gpu1.json" || true

devices=()
for ((i = 0; i < gpus; i++)); do devices+=("cuda:$i"); done
if ((gpus > 1)); then
  say "tiny GPT, data parallel over $gpus GPUs"
  nodes "$tmp/gpuN" "${devices[@]}"
  PARALLAX_NODES="$tmp/gpuN" "${cli[@]}" parallel --model tiny --dp "$gpus" --steps 10 --seed 7 --json > "$tmp/gpuN.json" || true
  say "all-reduce over NCCL, $gpus ranks"
  PARALLAX_NODES="$tmp/gpuN" "${cli[@]}" parallel --bench allreduce --ranks "$gpus" --sizes 1MB..256MB --json > "$tmp/bench.json" || true
fi

# One JSON line and a verdict: the losses of each GPU run against the CPU run.
exec $PY - "$tmp" "$gpus" <<'PY'
import json, os, sys
tmp, gpus = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(tmp, name)
    try:
        with open(p) as f:
            return json.load(f)
    except Exception as e:
        return {"error": "%s: %s" % (name, e)}
cpu = load("cpu1.json")
summary = {"gpus": gpus, "seen": load("gpus.json"), "checks": {}}
ok = "loss" in cpu
def compare(name, run):
    global ok
    if "loss" not in run:
        summary["checks"][name] = {"passed": False, "error": run.get("error", "no loss")}
        ok = False
        return
    worst = max(abs(a - b) / abs(b) for a, b in zip(run["loss"], cpu["loss"]))
    passed = worst <= 1e-4
    summary["checks"][name] = {"passed": passed, "maxRelativeLossDiff": worst, "medianStepMs": run.get("medianStepMs")}
    ok = ok and passed
compare("1 GPU vs CPU", load("gpu1.json"))
if gpus > 1:
    compare("DP over %d GPUs vs CPU" % gpus, load("gpuN.json"))
    bench = load("bench.json")
    summary["checks"]["NCCL all-reduce"] = {"passed": "rows" in bench, "result": bench.get("rows", bench.get("error"))}
    ok = ok and "rows" in bench
print(json.dumps(summary))
print("parallax gpu-check: %s" % ("PASS: the CUDA path works on this machine" if ok
      else "FAIL: see the checks above and docs/gpu.md"))
sys.exit(0 if ok else 1)
PY
