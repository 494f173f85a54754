# Shared set-up for install/run.sh and install/test.sh. Sourced, not run.
# Every failure here is one clear line on stderr and a non-zero exit.

PARALLAX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3

die() { echo "parallax: $*" >&2; exit 1; }
say() { echo "parallax: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run '$*' (no sudo found): install those packages and rerun"; fi
}

check_java() {
  local java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  command -v "$java_bin" >/dev/null 2>&1 || die "no java found: install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk)"
  local v
  v=$("$java_bin" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [[ -n "$v" ]] || die "could not read the Java version from $java_bin"
  [[ "${v%%.*}" -ge 17 ]] 2>/dev/null || die "Java $v found at $(command -v "$java_bin"); Parallax needs Java 17 or newer (set JAVA_HOME)"
  "$java_bin" --list-modules 2>/dev/null | grep -q '^jdk.jshell' \
    || die "the JDK at $(command -v "$java_bin") lacks the jdk.jshell module (a JRE, not a JDK?): install a full JDK 17+"
  command -v "${JAVA_HOME:+$JAVA_HOME/bin/}javac" >/dev/null 2>&1 || die "no javac found: install a JDK (not only a JRE) 17 or newer"
  JAVA_BIN="$(command -v "$java_bin")"
  JAVA_BIN="$(readlink -f "$JAVA_BIN")"
}

check_maven() {
  command -v mvn >/dev/null 2>&1 || die "Maven is missing: install it (Debian: apt-get install maven)"
}

# Debian packages for Jupyter; installed only when a module is missing.
JUPYTER_DEBS=(jupyter-notebook jupyter-client jupyter-nbconvert python3-nbclient python3-ipykernel)

ensure_debs() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing Debian packages: ${missing[*]}"
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with your package manager"
    as_root apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
}

ensure_jupyter() {
  if ! $PY -c "import notebook, nbclient, nbconvert, jupyter_client, ipykernel" >/dev/null 2>&1; then
    ensure_debs "${JUPYTER_DEBS[@]}"
  fi
  $PY -c "import notebook, nbclient, nbconvert, jupyter_client" >/dev/null 2>&1 \
    || die "Jupyter is still not importable by $PY after installing ${JUPYTER_DEBS[*]}"
}

# Maven profiles for the build: --cuda on run.sh/test.sh/gpu-check.sh sets -Pcuda (GPU natives).
MAVEN_PROFILES=()

build() {
  say "building (mvn package${MAVEN_PROFILES[*]:+ ${MAVEN_PROFILES[*]}})"
  (cd "$PARALLAX_ROOT" && mvn -B -q package -DskipTests "${MAVEN_PROFILES[@]}") || die "the Maven build failed (see above)"
}

# Writes a kernelspec pointing at this checkout's build into $1 (a kernels/parallax folder).
write_kernelspec() {
  local dir="$1"
  mkdir -p "$dir"
  local gpu=""
  # A --cuda build carries only libtorch's GPU natives: the kernel's JVM must ask for them.
  if compgen -G "$PARALLAX_ROOT/kernel/target/lib/pytorch-*-gpu.jar" >/dev/null; then
    gpu='"-Dorg.bytedeco.javacpp.platform.extension=-gpu", '
  fi
  sed -e "s#@JAVA@#${JAVA_BIN}#" -e "s#@CP@#${PARALLAX_ROOT}/kernel/target/lib/*:${PARALLAX_ROOT}/kernel/target/parallax-kernel.jar#" \
    -e "s#\"-cp\"#${gpu}\"-cp\"#" \
    "$PARALLAX_ROOT/install/kernelspec/kernel.json.in" > "$dir/kernel.json.tmp"
  mv "$dir/kernel.json.tmp" "$dir/kernel.json"
}

install_kernelspec() {
  local tmp
  tmp="$(mktemp -d)"
  write_kernelspec "$tmp/parallax"
  $PY -m jupyter kernelspec install --user --name parallax "$tmp/parallax" >/dev/null 2>&1 \
    || die "could not install the kernelspec (jupyter kernelspec install --user)"
  rm -rf "$tmp"
  say "installed kernelspec 'Parallax (Java)' for $(id -un)"
}

# llama.cpp as an outside reader of the GGUF files Parallax writes: the npm package
# node-llama-cpp, pinned exactly (newer releases' lock files need builds for other platforms
# that are not served here), CPU-only with its prebuilt linux-x64 binaries (83 MB instead of
# 732 MB), in ~/.parallax/node where parallax.engine.model.LlamaCpp looks. Idempotent: an
# install of the same version is kept.
NODE_LLAMA_CPP_VERSION=3.21.1
ensure_node_llama_cpp() {
  local prefix="${PARALLAX_NODE_LLAMA_CPP:-$HOME/.parallax/node}"
  local pkg="$prefix/node_modules/node-llama-cpp/package.json"
  if [[ -f "$pkg" ]] && grep -q "\"version\": \"$NODE_LLAMA_CPP_VERSION\"" "$pkg" \
      && [[ -d "$prefix/node_modules/@node-llama-cpp/linux-x64" ]]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || ensure_debs nodejs npm
  command -v npm >/dev/null 2>&1 || die "npm is missing after installing nodejs and npm"
  say "installing node-llama-cpp $NODE_LLAMA_CPP_VERSION (llama.cpp, CPU) into $prefix"
  mkdir -p "$prefix"
  (cd "$prefix" && npm i -E --omit=optional --no-audit --no-fund \
      "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" "@node-llama-cpp/linux-x64@$NODE_LLAMA_CPP_VERSION" >/dev/null) \
    || die "npm could not install node-llama-cpp@$NODE_LLAMA_CPP_VERSION into $prefix"
}
