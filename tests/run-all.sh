#!/usr/bin/env bash
# The project's whole test run (README: `bash tests/run-all.sh`; CI runs it
# through .ci/run). Stages, each with a header:
#   deps       .ci/deps.sh (Debian packages of .ci/packages.txt)
#   main       RelWithDebInfo (the project default), -Werror, every target,
#              every test                                          (build/)
#   checked    -DLW_CHECKED=ON: unit + api tests                   (build/ci/checked)
#   sanitize   -DLW_SANITIZE=ON (ASan+UBSan tools and tests), all but e2e
#              and stress (those run the same, unsanitised allocator as main)
#   tsan       ThreadSanitizer over the allocator itself: -fsanitize=thread
#              everywhere, unit tests and the stress programs that call lw_*
#              directly (TSan's runtime replaces the standard names); and
#              lwview's threaded import of the committed traces
#   clang      clang, -Werror, every target; unit + api + stress tests
#   aarch64    cross build (cmake/toolchain-aarch64.cmake), unit + api tests
#              under qemu-aarch64 with 4, 16 and 64 KiB pages
# Ends with a summary whose last line is "N passed, N failed" (stages);
# exits non-zero when any stage failed.
#
# LW_STAGES=main,clang (comma-separated) runs only those stages;
# JOBS (default 2) sets build and ctest parallelism.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
JOBS="${JOBS:-2}"
STAGES="${LW_STAGES:-deps,main,checked,sanitize,tsan,clang,aarch64}"
CI_DIR="$root/build/ci"
export CTEST_OUTPUT_ON_FAILURE=1

names=()
results=()
times=()

wanted() { [[ ",$STAGES," == *",$1,"* ]]; }

# run_stage NAME FUNCTION: prints a header, runs FUNCTION, records the result.
run_stage() {
  local name="$1" fn="$2" start rc
  wanted "$name" || return 0
  printf '\n==================== stage: %s ====================\n' "$name"
  start=$SECONDS
  "$fn"
  rc=$?
  names+=("$name")
  times+=($((SECONDS - start)))
  if [ "$rc" -eq 0 ]; then results+=(PASS); else results+=(FAIL); fi
  printf -- '---- stage %s: %s (%ss)\n' "$name" "${results[-1]}" "${times[-1]}"
}

# configure DIR [cmake args...]
configure() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; echo "configure of $dir failed"; return 1; }
}

# Builds only the targets defined under the given test directories (and
# what they depend on): the unit and api tests need neither tools nor bench.
# (make in a subdirectory of a Makefile build tree builds just that part.)
build_test_dirs() {
  local dir="$1" sub
  shift
  for sub in "$@"; do
    [ -d "$dir/tests/$sub" ] || continue
    make -C "$dir/tests/$sub" -j "$JOBS" --no-print-directory || return 1
  done
}

# build_and_test DIR CTEST_ARGS...: builds every target, keeping going past
# a failing one, then runs the tests of whatever did build; fails if
# either step failed (so one broken component still shows the others).
build_and_test() {
  local dir="$1" rc=0
  shift
  cmake --build "$dir" -j "$JOBS" -- -k || { rc=1; echo "** build of $dir failed; testing what was built"; }
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" "$@") || rc=1
  return "$rc"
}

stage_deps() { bash "$root/.ci/deps.sh"; }

stage_main() {
  mkdir -p build
  configure "$root/build" -DLW_WERROR=ON || return 1
  build_and_test "$root/build"
}

stage_checked() {
  local dir="$CI_DIR/checked"
  mkdir -p "$dir"
  configure "$dir" -DLW_CHECKED=ON -DLW_WERROR=ON -DLW_BUILD_TOOLS=OFF -DLW_BUILD_BENCH=OFF || return 1
  build_test_dirs "$dir" unit api || return 1
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" -L 'unit|api')
}

stage_sanitize() {
  local dir="$CI_DIR/sanitize"
  mkdir -p "$dir"
  configure "$dir" -DLW_SANITIZE=ON -DLW_BUILD_BENCH=OFF || return 1
  # verify_asan_link_order=0: sanitised tools that re-execute themselves
  # with LD_PRELOAD=liblwmalloc.so (not sanitised) are expected.
  ASAN_OPTIONS="abort_on_error=0:verify_asan_link_order=0:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    build_and_test "$dir" -E '^(e2e|stress)\.'
}

stage_tsan() {
  local dir="$CI_DIR/tsan"
  configure "$dir" -DCMAKE_C_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
    -DLW_BUILD_BENCH=OFF -DLW_BUILD_TOOLS=ON || return 1
  build_test_dirs "$dir" unit || return 1
  make -C "$dir/tests/stress" -j "$JOBS" --no-print-directory stress-stress-lw stress-thread_churn-lw || return 1
  make -C "$dir" -j "$JOBS" --no-print-directory lwview lwtrace test_viewer_units || return 1
  (cd "$dir" && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/stress/tsan.supp:${TSAN_OPTIONS:-}" \
    ctest --output-on-failure -j "$JOBS" -R '^(unit\.|stress\..*\.lw$|viewer_(units|committed|badinput)$)')
}

stage_clang() {
  local dir="$CI_DIR/clang"
  mkdir -p "$dir"
  CC=clang configure "$dir" -DCMAKE_C_COMPILER=clang -DLW_WERROR=ON || return 1
  build_and_test "$dir" -L 'unit|api|stress'
}

# The cross build is configured once; each page size only reconfigures
# (the emulator command line comes from the toolchain file).
stage_aarch64() {
  local dir="$CI_DIR/aarch64" rc=0 ps
  command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64-linux-gnu-gcc missing"; return 1; }
  command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 missing"; return 1; }
  mkdir -p "$dir"
  configure "$dir" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake" -DLW_WERROR=ON \
    -DLW_BUILD_TOOLS=OFF -DLW_BUILD_BENCH=OFF -DLW_QEMU_PAGESIZE= || return 1
  build_test_dirs "$dir" unit api || return 1
  # Under emulation the glibc reference runs (.libc) add nothing, and the
  # larger page sizes exercise the allocator, not how it is linked.
  local skip='\.libc$'
  for ps in 4096 16384 65536; do
    echo "-- qemu-aarch64 -p $ps"
    configure "$dir" -DLW_QEMU_PAGESIZE="$ps" || return 1
    (cd "$dir" && ctest --output-on-failure -j "$JOBS" -L 'unit|api' -E "$skip") || rc=1
    skip='\.(libc|preload|static)$'
  done
  return "$rc"
}

run_stage deps stage_deps
run_stage main stage_main
run_stage checked stage_checked
run_stage sanitize stage_sanitize
run_stage tsan stage_tsan
run_stage clang stage_clang
run_stage aarch64 stage_aarch64

printf '\n==================== summary ====================\n'
passed=0
failed=0
for i in "${!names[@]}"; do
  printf '  %-10s %s  %5ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
  if [ "${results[$i]}" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
