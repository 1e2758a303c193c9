# Shared by the scripts in scripts/: repo root, toolchain PATH, step banners.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# Non-login shells (CI) may lack rustup's PATH entry.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
step() { printf '\n==> %s\n' "$*"; }
# The target the workspace's programs are built for, statically (scripts/build): they land
# in target/$STATIC_TARGET/release (ts/vmm-client/src/binary.ts looks there).
STATIC_TARGET=x86_64-unknown-linux-gnu

# Installs npm dependencies at the versions pinned in package-lock.json when
# node_modules is missing or older than the lock; a no-op otherwise.
# Why `npm install` and not `npm ci`: the registry reachable here lacks some platform
# builds of optional dependencies (e.g. @rollup/rollup-openbsd-x64), so no lock written
# here lists them and `npm ci` refuses the lock as incomplete. `npm install` installs
# exactly the locked versions all the same, and leaves the lock as it is.
ensure_node_modules() {
  local marker=node_modules/.package-lock.json
  if [ ! -f "$marker" ] || [ package-lock.json -nt "$marker" ]; then
    step "npm install (from package-lock.json)"
    npm install --no-audit --no-fund
  fi
}

# Everything a fresh clone needs before it can run: host packages, npm deps, the build.
prepare() {
  step "setup (Debian packages)"
  bash scripts/setup
  ensure_node_modules
  bash scripts/build
}

# vmctl's guest kernel (images/kernel/build): cached outside the repo by config hash, so
# only the first run on a machine builds it (~10 minutes on 2 cores). Tests and benches
# that boot real Linux need it; the demo does not.
prepare_kernel() {
  step "guest kernel (images/kernel/build)"
  images/kernel/build >/dev/null
}
