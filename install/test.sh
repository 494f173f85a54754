#!/usr/bin/env bash
# install/test.sh: the same set-up as run.sh, plus the test peers, then every test
# (mvn -B verify: unit tests, real worker JVMs, a real Jupyter client, the lessons).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Test peers from Debian: the protocol conformance suite, headless Chromium, PyTorch
# (Gloo peer for collectives and DDP, checkpoint cross-checks), the ONNX checker,
# OpenSSH (the ssh launcher is tested against a local sshd on 127.0.0.1/127.0.0.2, and an
# sshd per node of the multi-node test bed), iproute2 (ip, tc: the test bed's network
# namespaces and shaped links; those tests run as root and skip with their reason otherwise),
# SentencePiece (trains the tokenizer.model a converted Llama is tested with); and
# llama.cpp through npm's node-llama-cpp, the judge of the GGUF files we write.
TEST_DEBS=(python3-jupyter-kernel-test chromium python3-torch python3-onnx openssh-server openssh-client iproute2 python3-sentencepiece)

# --cuda: build and test with the GPU natives (Maven profile cuda; docs/gpu.md). Other
# arguments go to mvn verify.
args=()
for a in "$@"; do
  if [[ "$a" == --cuda ]]; then MAVEN_PROFILES=(-Pcuda); else args+=("$a"); fi
done

check_java
check_maven
ensure_jupyter
ensure_debs "${TEST_DEBS[@]}"
ensure_node_llama_cpp
build
install_kernelspec

cd "$PARALLAX_ROOT"
# Every peer above is installed now: a cross-check that finds one missing fails instead of skipping.
export PARALLAX_REQUIRE_PEERS=1
say "running every test (mvn -B verify)"
exec mvn -B verify "${MAVEN_PROFILES[@]}" "${args[@]}"
