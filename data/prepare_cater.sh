#!/usr/bin/env bash
# Gathers a pre-rendered CATER release (downloaded by hand: the zips of one
# version, e.g. max2action or all_actions, or a folder they were unpacked
# into) into the layout sideways_jax.data.cater reads:
#
#   ROOT/videos/CATER_new_XXXXXX.avi
#   ROOT/lists/<task>/{train,val}.txt
#
# Every CATER_new_*.avi found in the sources goes to ROOT/videos (hard-linked
# from folders when possible), every folder named 'lists' is merged into
# ROOT/lists. Use one ROOT per CATER version.
#
# Usage: bash data/prepare_cater.sh [-o ROOT (default data/cater)] SOURCE...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_extract.sh"

root="$here/cater"
if [[ "${1:-}" == "-o" ]]; then
  [[ $# -ge 2 ]] || die "usage: $0 [-o ROOT] SOURCE..."
  root="$2"
  shift 2
fi
[[ $# -ge 1 ]] || die "usage: $0 [-o ROOT] SOURCE... (zips or folders)"

staging="$root/.staging"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$root/videos" "$root/lists" "$staging"
searched=()
for source in "$@"; do
  if [[ -d "$source" ]]; then
    searched+=("$source")
  else
    need_file "$source"
    dest="$staging/$(basename "$source")"
    echo "unpacking $source ..."
    extract "$source" "$dest"
    searched+=("$dest")
  fi
done

while IFS= read -r -d '' video; do
  ln -f "$video" "$root/videos/" 2>/dev/null || cp -f "$video" "$root/videos/"
done < <(find "${searched[@]}" -name 'CATER_new_*.avi' -print0)
while IFS= read -r -d '' lists; do
  cp -rf "$lists"/. "$root/lists/"
done < <(find "${searched[@]}" -type d -name lists -print0)

count=$(find "$root/videos" -name '*.avi' | wc -l)
tasks=$(find "$root/lists" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null)
[[ "$count" -gt 0 ]] || die "no CATER_new_*.avi found in: $*"
echo "CATER: $count videos (a release has 5500); list tasks: ${tasks:-none}"
[[ -n "$tasks" ]] || echo "warning: no lists/ found; only split='all' (auto-encoding) will work" >&2
echo "check decoding with: python data/verify_dataset.py cater --root $root --split train"
