#!/bin/bash
# Renders tempo.manifest.template by plain substitution, without Gramine: for checking the
# template and for reading what gramine-manifest will produce. Usage:
#   render.sh TEMPLATE OUT name=value ...   (names as in the template; gramine.libos and
#   gramine.runtimedir() included). Fails if a {{ ... }} placeholder is left unset.
set -euo pipefail
template=$1 out=$2
shift 2
text=$(cat "$template")
for kv in "$@"; do
  name=${kv%%=*} value=${kv#*=}
  text=${text//"{{ $name }}"/$value}
done
if grep -q '{{' <<<"$text"; then
  echo "render.sh: unset placeholders:" >&2
  grep -o '{{[^}]*}}' <<<"$text" | sort -u >&2
  exit 1
fi
printf '%s\n' "$text" > "$out"
