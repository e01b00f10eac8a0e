#!/usr/bin/env bash
# Dependency direction is one way: server -> engine -> runtime -> model -> ops -> kernels -> core.
# tokenizer, sampling, chat (templates) and hub (downloads) sit beside ops (they need only core);
# bench (the serving-benchmark client) sits beside server. A file in layer L may include
# "contrail/X/..." only when X is L or ranks below L. Fails listing every violating include.
set -u
root=${1:-.}
rank() {
  case $1 in
    core) echo 0 ;; kernels) echo 1 ;; ops|tokenizer|sampling|chat|hub) echo 2 ;; model) echo 3 ;;
    runtime) echo 4 ;; engine) echo 5 ;; server|bench) echo 6 ;; *) echo 99 ;;
  esac
}
bad=0
for dir in "$root"/src/* "$root"/include/contrail/*; do
  [ -d "$dir" ] || continue
  layer=$(basename "$dir")
  lr=$(rank "$layer")
  while IFS= read -r line; do
    file=${line%%:*}
    dep=$(sed -E 's/.*#include[[:space:]]*"contrail\/([a-z_]+)\/.*/\1/' <<<"$line")
    dr=$(rank "$dep")
    if [ "$dep" != "$layer" ] && [ "$dr" -ge "$lr" ]; then
      echo "layering violation: $file ($layer) includes contrail/$dep"
      bad=1
    fi
  done < <(grep -rHn '#include[[:space:]]*"contrail/' "$dir" || true)
done
[ $bad -eq 0 ] && echo "layering ok"
exit $bad
