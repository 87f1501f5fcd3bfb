#!/usr/bin/env bash
# Installs the native libraries ChunkSeg loads (HDF5, Blosc, Zstandard) and, with --test, the independent
# reference implementations the tests compare against (h5py, zarr-python, VIGRA, scikit-learn, scikit-image, meshio, tifffile and Pillow (TIFF inputs) from Debian's /usr/bin/python3;
# Debian's prometheus server and chromium browser for the monitoring tests;
# zarrita, the Zarr v3 reader, and ajv, the JSON Schema validator, from npm into tools/reference/npm/node_modules, pinned by its package-lock.json).
# The GPU backend's tests need nothing native: they run the ILGPU kernels on ILGPU's CPU accelerator.
# Idempotent: does nothing when everything is present. Needs root (the project's machines run as root).
set -euo pipefail

packages=(libblosc1 libzstd1)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3 python3-numpy python3-h5py python3-zarr python3-numcodecs python3-vigra python3-sklearn python3-scipy python3-skimage python3-meshio python3-tifffile python3-pil)
  # The monitoring tests: a real Prometheus scraping the cluster, and a real browser (driven by Playwright) on the job page.
  packages+=(prometheus chromium)
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# zarrita and ajv (npm) for the Zarr v3 and NGFF schema tests: exactly the versions in package-lock.json, installed
# when node_modules lacks any package the lock names (a checkout from before a package was added gets it too).
if [[ "${1:-}" == "--test" ]]; then
  npm_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/reference/npm"
  if ! node -e 'const fs = require("fs"), dir = process.argv[1];
      const lock = JSON.parse(fs.readFileSync(dir + "/package-lock.json", "utf8"));
      process.exit(Object.keys(lock.packages).every((p) => p === "" || fs.existsSync(dir + "/" + p)) ? 0 : 1)' "$npm_dir"; then
    echo "Installing npm packages into $npm_dir" >&2
    npm ci --prefix "$npm_dir" --no-audit --no-fund >/dev/null
  fi
fi
