#!/usr/bin/env bash
# Dependency direction is one way: server -> engine -> runtime -> model -> ops -> kernels -> core.
# tokenizer, sampling, chat (templates) and hub (downloads) sit beside ops (they need only core);
# bench (the serving-benchmark client) sits beside server. A file in layer L may include
# "contrail/X/..." (a public header) or "X/..." (a private header under src/X) only when X is L or
# ranks below L. Besides:
# - hub, server and bench are libraries of their own (contrail_hub, contrail_server,
#   contrail_bench): nothing else in src/ or include/ includes them, so libcontrail never needs them;
# - HTTP and TLS stacks (<curl/...>, <httplib.h>, <boost/asio|beast...>, <openssl/...>) are included
#   only by those libraries, so libcontrail links none of them;
# - public headers (include/contrail) include only public headers (they are installed; src/ is not).
# Fails listing every violation.
set -u
if [ "${1:-}" = "--self-test" ]; then
  # A tree with one violation of each rule must fail, naming each; the same tree without them passes.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"/src/{core,model,hub,kernels} "$tmp"/include/contrail/{core,model}
  printf '#include "contrail/core/a.h"\n#include "kernels/simd.h"\n' >"$tmp/src/model/ok.cpp"
  printf '#include "contrail/core/a.h"\n' >"$tmp/include/contrail/model/ok.h"
  printf '#include <curl/curl.h>\n#include "contrail/core/a.h"\n' >"$tmp/src/hub/ok.cpp"
  "$0" "$tmp" >/dev/null || { echo "self-test: a clean tree was rejected"; exit 1; }
  printf '#include "contrail/model/m.h"\n' >"$tmp/src/core/up.cpp"       # upward (public header)
  printf '#include "model/loader.h"\n' >"$tmp/src/kernels/up.cpp"       # upward (private header)
  printf '#include "contrail/hub/hub.h"\n' >"$tmp/src/model/hub.cpp"    # a library of its own
  printf '#include <curl/curl.h>\n' >"$tmp/src/model/net.cpp"           # an HTTP stack
  printf '#include "core/detail.h"\n' >"$tmp/include/contrail/core/p.h" # public -> private
  out=$("$0" "$tmp")
  rc=$?
  for want in "src/core/up.cpp (core) includes \"contrail/model/m.h\"" "src/kernels/up.cpp (kernels) includes \"model/loader.h\"" \
      "src/model/hub.cpp (model) includes \"contrail/hub/hub.h\": hub is a library of its own" \
      "src/model/net.cpp (model) includes an HTTP/TLS stack" "include/contrail/core/p.h (public) includes the private header"; do
    grep -qF "$want" <<<"$out" || { echo "self-test: missed: $want"; echo "$out"; exit 1; }
  done
  [ $rc -ne 0 ] || { echo "self-test: violations did not fail"; exit 1; }
  echo "layering self-test ok"
  exit 0
fi
root=${1:-.}
# r = the rank of layer $1 (99: not a layer). Sets a variable instead of printing: no subshells,
# the script reads every include line of the tree.
rank() {
  case $1 in
    core) r=0 ;; kernels) r=1 ;; ops|tokenizer|sampling|chat|hub) r=2 ;; model) r=3 ;;
    runtime) r=4 ;; engine) r=5 ;; server|bench) r=6 ;; *) r=99 ;;
  esac
}
own_library() { case $1 in hub|server|bench) return 0 ;; *) return 1 ;; esac; }
bad=0
fail() {
  echo "layering violation: $1"
  bad=1
}
include_re='#include[[:space:]]*"([^"]*)"'
for dir in "$root"/src/* "$root"/include/contrail/*; do
  [ -d "$dir" ] || continue
  layer=$(basename "$dir")
  rank "$layer"
  lr=$r
  case $dir in "$root"/include/*) public=1 ;; *) public=0 ;; esac
  # Project includes: "contrail/X/..." (public) and "X/..." for a layer X (private, under src/X).
  while IFS= read -r line; do
    file=${line%%:*}
    [[ $line =~ $include_re ]] || continue
    inc=${BASH_REMATCH[1]}
    dep=${inc#contrail/}
    dep=${dep%%/*}
    rank "$dep"
    [ $r = 99 ] && continue  # not a layer: a file beside the includer, a test helper
    if [ $public = 1 ] && [ "${inc#contrail/}" = "$inc" ]; then
      fail "$file (public) includes the private header \"$inc\""
    fi
    [ "$dep" = "$layer" ] && continue
    if own_library "$dep"; then
      fail "$file ($layer) includes \"$inc\": $dep is a library of its own"
    elif [ $r -ge $lr ]; then
      fail "$file ($layer) includes \"$inc\" ($dep does not rank below $layer)"
    fi
  done < <(grep -rHn '#include[[:space:]]*"[a-z_]*/' "$dir" || true)
  # HTTP / TLS stacks only in their own libraries.
  if ! own_library "$layer"; then
    while IFS= read -r line; do
      fail "${line%%:*} ($layer) includes an HTTP/TLS stack: ${line#*#include}"
    done < <(grep -rHnE '#include[[:space:]]*<(curl/|httplib\.h|boost/(asio|beast)|openssl/)' "$dir" || true)
  fi
done
[ $bad -eq 0 ] && echo "layering ok"
exit $bad
