#!/usr/bin/env bash
# The project's test command (README and CI run exactly this). Installs what the tests need, runs every
# test project, then reruns the kernel tests with Vector256 only and with no SIMD at all (their results
# must be bit-identical at every SIMD width) and the ilastik parity tests with no SIMD, and ends with one
# line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test || exit 1

results=$(mktemp -d)
status=0
dotnet test ChunkSeg.sln -c Release --logger trx --results-directory "$results" "$@" || status=1
if [[ -d tests/ChunkSeg.Kernels.Tests ]]; then
  for mode in "DOTNET_EnableAVX512=0:avx2" "DOTNET_EnableHWIntrinsic=0:scalar"; do
    env "${mode%%:*}" dotnet test tests/ChunkSeg.Kernels.Tests -c Release --no-build \
      --logger "trx;LogFileName=kernels-${mode##*:}.trx" --results-directory "$results" "$@" || status=1
  done
  # ilastik's probabilities, exactly, also without SIMD (features and forests through the chunk spine).
  DOTNET_EnableHWIntrinsic=0 dotnet test tests/ChunkSeg.Pipeline.Tests -c Release --no-build \
    --filter "FullyQualifiedName~IlastikParity|FullyQualifiedName~Chunked_prediction_equals" \
    --logger "trx;LogFileName=parity-scalar.trx" --results-directory "$results" "$@" || status=1
fi

passed=0; failed=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
rm -rf "$results"
if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; echo "dotnet test failed (build or runner failure)" >&2; fi
echo "$passed passed, $failed failed"
exit $status
