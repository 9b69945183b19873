#!/usr/bin/env bash
# Hardening checks (docs/reliability.md), run by scripts/test.sh after the normal suite:
#  1. the whole unit-test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (g++,
#     cmake/sanitize.cmake) in ${SANITIZE_BUILD_DIR:-build-sanitize};
#  2. every libFuzzer target (clang, cmake/fuzz.cmake) in ${FUZZ_BUILD_DIR:-build-fuzz}, each
#     run for ${FUZZ_SECONDS:-20} s from the committed seed corpus in fuzz/corpus/<target>.
# Fails on any test failure, any sanitizer report and any fuzzer finding (crash, leak, timeout,
# out-of-memory); a finding's input is kept in $FUZZ_BUILD_DIR/findings/. HARDENING_SKIP_FUZZ=1
# or HARDENING_SKIP_SANITIZE=1 runs only the other half.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize_dir=${SANITIZE_BUILD_DIR:-build-sanitize}
fuzz_dir=${FUZZ_BUILD_DIR:-build-fuzz}
fuzz_seconds=${FUZZ_SECONDS:-20}
jobs=$(nproc)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

say() { printf 'hardening: %s\n' "$*"; }
die() {
  printf 'hardening: error: %s\n' "$*" >&2
  exit 1
}

# The reports name source lines; leaks count as failures; no sanitizer report goes unnoticed.
symbolizer=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
[[ -n "$symbolizer" ]] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [[ "${HARDENING_SKIP_SANITIZE:-0}" != 1 ]]; then
  start=$SECONDS
  say "sanitizer build (address, undefined) in $sanitize_dir"
  # CUDA stays off: the sanitizers instrument host code, and CI machines have no GPU. So does the
  # Python module: an instrumented extension cannot load into Debian's uninstrumented python3.
  # The toy op of docs/architecture.md is on: its tests come from its row (test_op_rows.cpp).
  cmake -S . -B "$sanitize_dir" -DCMAKE_BUILD_TYPE=Release -DCAE_SANITIZE=ON -DCAE_CUDA=OFF \
    -DCAE_PYTHON=OFF -DCAE_TOY_OP=ON "${launcher[@]}" >/dev/null
  cmake --build "$sanitize_dir" -j"$jobs"
  say "unit tests under the sanitizers"
  # Left out: Install.* builds a consumer against the installed library without the sanitizer
  # runtime, which cannot load an instrumented libcae. Mpi.* runs below without leak checking:
  # Open MPI's own runtime does not free what it allocates by MPI_Finalize (not ours to fix);
  # ASan's memory errors and UBSan stay on for it.
  ctest --test-dir "$sanitize_dir" --output-on-failure --timeout 900 -j"$jobs" -E '^(Install|Mpi)\.'
  ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
    ctest --test-dir "$sanitize_dir" --output-on-failure --timeout 900 -R '^Mpi\.' --no-tests=ignore
  say "sanitizer suite passed in $((SECONDS - start)) s"
fi

if [[ "${HARDENING_SKIP_FUZZ:-0}" != 1 ]]; then
  start=$SECONDS
  command -v clang++ >/dev/null || die "clang++ not found (Debian: clang libclang-rt-14-dev libomp-14-dev)"
  say "fuzz targets (clang, libFuzzer + address, undefined) in $fuzz_dir"
  CC=clang CXX=clang++ cmake -S . -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAE_FUZZ=ON \
    -DCAE_BUILD_TESTS=OFF -DCAE_CUDA=OFF -DCAE_MPI=OFF -DCAE_PYTHON=OFF "${launcher[@]}" >/dev/null
  cmake --build "$fuzz_dir" -j"$jobs" --target cae_fuzzers
  read -r -a targets <"$fuzz_dir/fuzz_targets.txt"
  findings="$fuzz_dir/findings"
  rm -rf "$findings"
  mkdir -p "$findings"
  summary="$fuzz_dir/fuzz-summary.txt"
  : >"$summary"
  failed=()
  for target in "${targets[@]}"; do
    seeds="fuzz/corpus/$target"
    [[ -d "$seeds" ]] || die "no seed corpus in $seeds"
    # New inputs go to a scratch corpus; the committed seeds are only read.
    work="$fuzz_dir/corpus-work/$target"
    mkdir -p "$work"
    dict=()
    [[ -f "fuzz/$target.dict" ]] && dict=(-dict="fuzz/$target.dict")
    log="$fuzz_dir/$target.log"
    say "fuzzing $target for $fuzz_seconds s"
    status=0
    "$fuzz_dir/$target" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$findings/$target-" \
      "${dict[@]}" "$work" "$seeds" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    printf '%-16s %10s executions in %s s, exit %d\n' "$target" "${runs:-?}" "$fuzz_seconds" \
      "$status" | tee -a "$summary"
    if ((status != 0)); then
      grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -n 20 >&2 || true
      failed+=("$target")
    fi
  done
  ((${#failed[@]} == 0)) || die "fuzzer findings in: ${failed[*]} (inputs in $findings, logs in $fuzz_dir/<target>.log)"
  say "fuzzing found nothing in $((SECONDS - start)) s (summary in $summary)"
fi
