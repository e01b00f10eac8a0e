#!/usr/bin/env bash
# Every parameterised GoogleTest suite must run at least one case: usage
# check_param_suites.sh SOURCE_TESTS_DIR BINARY_TESTS_DIR. For each tests/test_*.cpp, lists the
# tests of its binary (--gtest_list_tests) and fails when
#  - a TEST_P suite of the source lists no test (e.g. INSTANTIATE_TEST_SUITE_P over an empty
#    generated list, or no instantiation at all),
#  - the binary lists GoogleTest's own "GoogleTestVerification.UninstantiatedParameterizedTestSuite"
#    (gtest >= 1.11 reports a suite with zero instantiations that way),
#  - a source opts out of that check with GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST.
# Registered as the ctest param_suites_instantiated, so both CI builds (Release, ASan) run it.
set -uo pipefail
src=${1:?usage: check_param_suites.sh SOURCE_TESTS_DIR BINARY_TESTS_DIR}
bin=${2:?usage: check_param_suites.sh SOURCE_TESTS_DIR BINARY_TESTS_DIR}
bad=0
suites_checked=0

if grep -rn --include='*.cpp' --include='*.h' "GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST" "$src"; then
  echo "check_param_suites: GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST hides suites that run nothing"
  bad=$((bad + 1))
fi

for cpp in "$src"/test_*.cpp; do
  name=$(basename "$cpp" .cpp)
  [[ $name == test_util ]] && continue
  exe=$bin/$name
  if [[ ! -x "$exe" ]]; then
    echo "check_param_suites: $exe not built"
    bad=$((bad + 1))
    continue
  fi
  if ! listing=$("$exe" --gtest_list_tests 2>&1); then
    echo "check_param_suites: $exe --gtest_list_tests failed:"
    echo "$listing" | tail -5
    bad=$((bad + 1))
    continue
  fi
  if grep -q "UninstantiatedParameterizedTestSuite" <<<"$listing"; then
    echo "check_param_suites: $name has parameterised suites without instances:"
    grep "UninstantiatedParameterizedTestSuite" <<<"$listing"
    bad=$((bad + 1))
  fi
  # Suite lines are unindented "Prefix/Suite." (or "Prefix/Suite/0." for unnamed params); test
  # lines are indented. Count the tests listed under each suite name.
  counts=$(awk '
    /^[^ ]/ { s = $1; sub(/\.$/, "", s); n = split(s, parts, "/"); suite = (n >= 2 ? parts[2] : parts[1]); next }
    /^  / { c[suite]++ }
    END { for (k in c) print k, c[k] }' <<<"$listing")
  for suite in $(grep -ohE '^\s*TEST_P\(\s*[A-Za-z_][A-Za-z0-9_]*' "$cpp" | sed -E 's/.*TEST_P\(\s*//' | sort -u); do
    suites_checked=$((suites_checked + 1))
    n=$(awk -v s="$suite" '$1 == s { print $2 }' <<<"$counts")
    if [[ -z "$n" || "$n" -eq 0 ]]; then
      echo "check_param_suites: $name: parameterised suite $suite runs 0 tests"
      bad=$((bad + 1))
    fi
  done
done

if [[ $suites_checked -eq 0 ]]; then
  echo "check_param_suites: found no TEST_P suite under $src (wrong directory?)"
  exit 1
fi
if [[ $bad -gt 0 ]]; then
  echo "check_param_suites: $bad problem(s)"
  exit 1
fi
echo "check_param_suites: all $suites_checked parameterised suites run at least one test"
