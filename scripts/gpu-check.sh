#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and the .NET 10 SDK: builds the solution, runs the GPU parity tests on
# CUDA (CHUNKSEG_GPU=cuda: tests/ChunkSeg.IlgpuKernels.Tests and the pipeline's BackendTests, the same tests CI runs on
# ILGPU's CPU accelerator), then `chunkseg bench backend --size 256` (the CPU backend and the GPU side by side on the
# same data, each figure beside the largest difference between their results), and writes a short report:
#
#   scripts/gpu-check.sh [OUT_DIR]          (default: gpu-check/)
#     OUT_DIR/report.md      the card, the driver, test counts, the bench table: copy its figures into docs/gpu-backend.md
#     OUT_DIR/*.log          the full test and bench output
#
# Exit code: 0 when every test passed and the bench ran; 1 otherwise (the report says which step failed).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
mkdir -p "$out"
export CHUNKSEG_GPU=cuda DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
status=0

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi finds none); this check is for a GPU node" >&2
  exit 1
fi
if ! command -v dotnet >/dev/null; then
  echo "gpu-check: the .NET 10 SDK is not on PATH (https://dot.net); it builds and runs the tests" >&2
  exit 1
fi

gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
echo "gpu-check on: $gpu"

step() {   # step NAME COMMAND...: runs COMMAND, its output to OUT/NAME.log; remembers a failure
  local name=$1; shift
  echo "== $name"
  if "$@" >"$out/$name.log" 2>&1; then echo "   ok"; else echo "   FAILED (see $out/$name.log)"; status=1; fi
}

step build dotnet build ChunkSeg.sln -c Release -nologo
step kernels dotnet test tests/ChunkSeg.IlgpuKernels.Tests -c Release --no-build --logger "console;verbosity=normal"
step pipeline dotnet test tests/ChunkSeg.Pipeline.Tests -c Release --no-build --filter "FullyQualifiedName~BackendTests" --logger "console;verbosity=normal"
step bench dotnet run --project src/Cli -c Release --no-build -- bench backend --size 256 --backend gpu

counts() { grep -E "^(Passed|Failed)!|Total tests|Passed:|Failed:" "$out/$1.log" | tr -s ' ' | head -4 | paste -sd ' ' -; }
{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- GPU: $gpu"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- kernel parity tests (CHUNKSEG_GPU=cuda): $(counts kernels)"
  echo "- pipeline backend tests: $(counts pipeline)"
  echo
  echo '## chunkseg bench backend --size 256'
  echo '```'
  cat "$out/bench.log"
  echo '```'
  [[ $status -eq 0 ]] || echo "**A step failed**: see the logs beside this report."
} >"$out/report.md"
echo "report: $out/report.md"
exit $status
