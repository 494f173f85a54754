#!/usr/bin/env bash
# install/test.sh: the same set-up as run.sh, plus the test peers, then every test
# (mvn -B verify: unit tests, real worker JVMs, a real Jupyter client, the lessons).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Test peers from Debian: the protocol conformance suite and headless Chromium.
TEST_DEBS=(python3-jupyter-kernel-test chromium)

check_java
check_maven
ensure_jupyter
ensure_debs "${TEST_DEBS[@]}"
build
install_kernelspec

cd "$PARALLAX_ROOT"
say "running every test (mvn -B verify)"
exec mvn -B verify "$@"
