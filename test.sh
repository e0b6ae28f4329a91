#!/usr/bin/env bash
# Runs every test: builds first (./build.sh), then the native tests (ctest), then the .NET
# tests of Appliance.sln. Prints each test's result and ends with one summary line:
#   summary: N passed, N failed, N skipped
# Exits nonzero if the build or any test failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
RESULTS=$ROOT/out/test-results
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf 'test: %s\n' "$*"; }

passed=0 failed=0 skipped=0 problems=()

./build.sh

rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# Native tests, if the native build registered any with CTest.
native_build=$ROOT/out/native-build
if [[ -f $native_build/CTestTestfile.cmake ]] &&
   ctest --test-dir "$native_build" -N 2>/dev/null | grep -Eq 'Total Tests: [1-9]'; then
    say "native tests (ctest)"
    rc=0
    ctest --test-dir "$native_build" --output-on-failure --timeout 600 2>&1 | tee "$RESULTS/ctest.log" || rc=$?
    # "100% tests passed, 0 tests failed out of 12"
    if line=$(grep -E '[0-9]+ tests failed out of [0-9]+' "$RESULTS/ctest.log" | tail -n 1); then
        n_failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
        n_total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
        n_skipped=$(grep -Ec 'Test +#[0-9]+: .*\*\*\*(Skipped|Not Run)' "$RESULTS/ctest.log" || true)
        passed=$((passed + n_total - n_failed - n_skipped))
        failed=$((failed + n_failed))
        skipped=$((skipped + n_skipped))
    fi
    [[ $rc -eq 0 ]] || problems+=("native tests (ctest exit code $rc)")
else
    say "native tests: none registered with CTest"
fi

# .NET tests: one line per test, then a summary per test assembly.
say ".NET tests (dotnet test Appliance.sln)"
rc=0
dotnet test Appliance.sln -c Release --no-build -nologo \
    --logger 'console;verbosity=normal' \
    --results-directory "$RESULTS" \
    --blame-hang-timeout 15m --blame-hang-dump-type none \
    2>&1 | tee "$RESULTS/dotnet-test.log" || rc=$?
# Each test assembly ends with a block: "Total tests: N", "Passed: N", "Failed: N", "Skipped: N".
read -r p f s < <(awk '
    /^Total tests: [0-9]+/ { block = 1; next }
    block && /^ +Passed: +[0-9]+ *$/  { p += $2 }
    block && /^ +Failed: +[0-9]+ *$/  { f += $2 }
    block && /^ +Skipped: +[0-9]+ *$/ { s += $2 }
    /Total time:/ { block = 0 }
    END { print p + 0, f + 0, s + 0 }' "$RESULTS/dotnet-test.log")
passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
[[ $rc -eq 0 ]] || problems+=("dotnet test (exit code $rc)")

echo
if [[ ${#problems[@]} -eq 0 && $failed -eq 0 ]]; then
    say "all tests passed"
    verdict=0
else
    [[ ${#problems[@]} -eq 0 ]] || say "FAILED: ${problems[*]}"
    [[ $failed -eq 0 ]] || say "FAILED: $failed test(s) failed; see the lines marked Failed above"
    verdict=1
fi
echo "summary: $passed passed, $failed failed, $skipped skipped"
exit $verdict
