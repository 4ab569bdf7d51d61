#!/usr/bin/env bash
# Unpacks the official HMDB51 archives (downloaded by hand) into the layout
# sideways_jax.data.hmdb51 reads:
#
#   ROOT/videos/<class>/<video>.avi
#   ROOT/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt
#
# hmdb51_org.rar holds one .rar per class; each is unpacked in turn.
#
# Usage: bash data/prepare_hmdb51.sh hmdb51_org.rar test_train_splits.rar \
#          [ROOT (default data/hmdb51)]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_extract.sh"

two_archives "$0 hmdb51_org.rar test_train_splits.rar [ROOT]" "$here/hmdb51" "$@"

staging="$root/.staging"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
echo "unpacking $videos_archive ..."
extract "$videos_archive" "$staging"
shopt -s nullglob
class_archives=("$staging"/*.rar "$staging"/*/*.rar)
[[ ${#class_archives[@]} -gt 0 ]] || die "no per-class .rar inside $videos_archive: is it the official hmdb51_org.rar?"
for archive in "${class_archives[@]}"; do
  extract "$archive" "$root/videos"
done
echo "unpacking $splits_archive ..."
extract "$splits_archive" "$root"

[[ -d "$root/testTrainMulti_7030_splits" ]] || die "$root/testTrainMulti_7030_splits missing after unpacking"
report_counts HMDB51 "$root/videos" 6766 51 hmdb51
