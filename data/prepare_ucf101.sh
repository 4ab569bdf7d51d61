#!/usr/bin/env bash
# Unpacks the official UCF101 archives (downloaded by hand) into the layout
# sideways_jax.data.ucf101 reads:
#
#   ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
#   ROOT/ucfTrainTestlist/{classInd.txt,trainlist0N.txt,testlist0N.txt}
#
# Usage: bash data/prepare_ucf101.sh UCF101.rar \
#          UCF101TrainTestSplits-RecognitionTask.zip [ROOT (default data/ucf101)]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_extract.sh"

[[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 UCF101.rar UCF101TrainTestSplits-RecognitionTask.zip [ROOT]"
videos_archive="$1"
splits_archive="$2"
root="${3:-$here/ucf101}"
need_file "$videos_archive"
need_file "$splits_archive"

echo "unpacking $videos_archive into $root (6.5 GB) ..."
extract "$videos_archive" "$root"
echo "unpacking $splits_archive into $root ..."
extract "$splits_archive" "$root"

[[ -d "$root/UCF-101" ]] || die "$root/UCF-101 missing after unpacking: is $videos_archive the official UCF101.rar?"
[[ -f "$root/ucfTrainTestlist/classInd.txt" ]] || die "$root/ucfTrainTestlist/classInd.txt missing after unpacking"
count=$(find "$root/UCF-101" -name '*.avi' | wc -l)
classes=$(find "$root/UCF-101" -mindepth 1 -maxdepth 1 -type d | wc -l)
echo "UCF101: $count videos in $classes class folders (official: 13320 in 101)"
[[ "$count" -eq 13320 && "$classes" -eq 101 ]] || echo "warning: counts differ from the official release" >&2
echo "check decoding with: python data/verify_dataset.py ucf101 --root $root"
