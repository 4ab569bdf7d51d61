# Shared by the prepare_*.sh scripts (sourced, not run).
# extract ARCHIVE DEST: unpacks a .zip with unzip, anything else (.rar) with
# the first of unrar, unar, 7z or bsdtar that is installed.
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
