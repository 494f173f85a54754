#!/usr/bin/env bash
# install/run.sh [--headless] [--cuda]: build, install Jupyter if missing, install the kernel,
# then open the lessons in Jupyter Notebook on 127.0.0.1 (or, with --headless, execute
# every lesson into target/lessons/ as .ipynb and .html and exit non-zero if a cell fails).
# --cuda builds with the GPU natives (Maven profile cuda, ~850 MB more; docs/gpu.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

headless=0
for a in "$@"; do
  case "$a" in
    --headless) headless=1 ;;
    --cuda) MAVEN_PROFILES=(-Pcuda) ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) die "unknown option $a (use --headless, --cuda or nothing)" ;;
  esac
done

check_java
check_maven
ensure_jupyter
# Lesson 07 runs the GGUF files it writes in llama.cpp (npm node-llama-cpp). Without node or
# npm the lessons still run: those cells then say in one line what is missing.
( ensure_node_llama_cpp ) || say "llama.cpp (node-llama-cpp) is not installed; lesson 07's llama.cpp cells will say so"
build
install_kernelspec

if [[ $headless -eq 1 ]]; then
  out="$PARALLAX_ROOT/target/lessons"
  mkdir -p "$out"
  failed=0
  for nb in "$PARALLAX_ROOT"/notebooks/*.ipynb; do
    name="$(basename "$nb" .ipynb)"
    say "executing $name"
    if ! $PY -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
         --ExecutePreprocessor.kernel_name=parallax --output-dir "$out" --output "$name" "$nb" >"$out/$name.log" 2>&1; then
      say "FAILED: $name (log: $out/$name.log)"
      failed=1
      continue
    fi
    $PY -m jupyter nbconvert --to html --output-dir "$out" "$out/$name.ipynb" >>"$out/$name.log" 2>&1 \
      || { say "FAILED to render $name as HTML (log: $out/$name.log)"; failed=1; }
  done
  [[ $failed -eq 0 ]] || die "some lessons failed; see $out"
  say "all lessons executed: $out"
  exit 0
fi

say "starting Jupyter Notebook on http://127.0.0.1:8888 (Ctrl-C to stop)"
cd "$PARALLAX_ROOT/notebooks"
root_flag=()
[[ $(id -u) -eq 0 ]] && root_flag=(--allow-root)
# The server prints its URL (with the access token) once it is up.
exec $PY -m notebook --ip=127.0.0.1 --port=8888 --no-browser "${root_flag[@]}" --notebook-dir="$PARALLAX_ROOT/notebooks"
