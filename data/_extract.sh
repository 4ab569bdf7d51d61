# Shared by the prepare_*.sh scripts (sourced, not run).
# extract ARCHIVE DEST: unpacks a .zip with unzip, anything else (.rar) with
# the first of unrar, unar, 7z or bsdtar that is installed.
# two_archives USAGE DEFAULT_ROOT ARGS...: reads "VIDEOS SPLITS [ROOT]" into
# $videos_archive, $splits_archive and $root (both archives must exist).
# report_counts NAME VIDEO_DIR VIDEOS CLASSES DATASET: prints the videos and
# class folders found against the official counts, and the check to run.
extract() {
  local archive="$1" dest="$2"
  mkdir -p "$dest"
  case "$archive" in
    *.zip|*.ZIP)
      command -v unzip >/dev/null || die "unzip is needed: apt-get install unzip"
      unzip -q -o "$archive" -d "$dest" ;;
    *)
      if command -v unrar >/dev/null; then
        unrar x -o+ -idq "$archive" "$dest/"
      elif command -v unar >/dev/null; then
        unar -q -f -D -o "$dest" "$archive"
      elif command -v 7z >/dev/null; then
        7z x -y -o"$dest" "$archive" >/dev/null
      elif command -v bsdtar >/dev/null; then
        bsdtar -xf "$archive" -C "$dest"
      else
        die "no RAR extractor: install one of unrar, unar, p7zip-full or libarchive-tools (bsdtar)"
      fi ;;
  esac
}

die() {
  echo "error: $*" >&2
  exit 1
}

need_file() {
  [[ -f "$1" ]] || die "$1 not found (download it by hand first, see data/README.md)"
}

two_archives() {
  local usage="$1" default_root="$2"
  shift 2
  [[ $# -ge 2 && $# -le 3 ]] || die "usage: $usage"
  videos_archive="$1"
  splits_archive="$2"
  root="${3:-$default_root}"
  need_file "$videos_archive"
  need_file "$splits_archive"
}

report_counts() {
  local name="$1" dir="$2" want_videos="$3" want_classes="$4" dataset="$5"
  local count classes
  count=$(find "$dir" -name '*.avi' | wc -l)
  classes=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | wc -l)
  echo "$name: $count videos in $classes class folders (official: $want_videos in $want_classes)"
  [[ "$count" -eq "$want_videos" && "$classes" -eq "$want_classes" ]] || echo "warning: counts differ from the official release" >&2
  echo "check decoding with: python data/verify_dataset.py $dataset --root $root"
}
