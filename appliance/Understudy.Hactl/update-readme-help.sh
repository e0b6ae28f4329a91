#!/usr/bin/env bash
# Rewrites the command reference in README.md (between the "hactl help" markers) from the
# --help output of the built hactl. Run after changing a command: ./build.sh first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
hactl=${1:-out/bin/hactl}
[[ -x $hactl ]] || { echo "update-readme-help: $hactl is missing; run ./build.sh first" >&2; exit 1; }

commands=("" "agent run" launch checkpoint stop restore migrate status "group apply" "group start" "group stop" "group restart" "group show" "group delete" events
    "images list" "images verify" "images inspect" doctor demo
    "lab up" "lab status" "lab down" "lab crash" "lab partition" "lab heal" "lab start" "lab restart-agent" "lab exec" "cluster init")
help=$(mktemp)
trap 'rm -f "$help"' EXIT
{
    echo '<!-- hactl help: begin -->'
    for c in "${commands[@]}"; do
        echo
        echo "### \`hactl${c:+ $c}\`"
        echo
        echo '```'
        # shellcheck disable=SC2086 # word splitting of "images list" is intended
        "$hactl" $c --help | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
        echo '```'
    done
    echo
    echo '<!-- hactl help: end -->'
} >"$help"

awk -v help="$help" '
    /<!-- hactl help: begin -->/ { while ((getline line < help) > 0) print line; skip = 1; next }
    /<!-- hactl help: end -->/ { skip = 0; next }
    !skip { print }' README.md >README.md.new
mv README.md.new README.md
echo "update-readme-help: README.md updated from $hactl"
