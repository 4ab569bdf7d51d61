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

two_archives "$0 UCF101.rar UCF101TrainTestSplits-RecognitionTask.zip [ROOT]" "$here/ucf101" "$@"

echo "unpacking $videos_archive into $root (6.5 GB) ..."
extract "$videos_archive" "$root"
echo "unpacking $splits_archive into $root ..."
extract "$splits_archive" "$root"

[[ -d "$root/UCF-101" ]] || die "$root/UCF-101 missing after unpacking: is $videos_archive the official UCF101.rar?"
[[ -f "$root/ucfTrainTestlist/classInd.txt" ]] || die "$root/ucfTrainTestlist/classInd.txt missing after unpacking"
report_counts UCF101 "$root/UCF-101" 13320 101 ucf101
