#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test junbao: libclang (bindgen, for the
# RocksDB crate), a C++ compiler, hledger (the ledger-export test), and Chromium, chromedriver
# and pdftotext (the web console's browser tests). Does nothing when they are already there.
#
#   scripts/setup.sh             install what is missing (apt-get update, then apt-get install -y)
#   scripts/setup.sh --dry-run   print the packages it would install, one line, and install nothing
#
# JUNBAO_LIB_DIRS (colon-separated) replaces the folders searched for libclang; the test of this
# script (tests/setup_script.rs) points it at a fake library folder.
set -euo pipefail

# True when one of the folders holds a libclang that bindgen (the clang-sys crate) can load:
# `libclang.so` or `libclang-N.so` (N a version), which `libclang-dev` provides. Debian's
# `libclang-cpp14` package installs `libclang-cpp.so.14`, the C++ API, which bindgen cannot use;
# an earlier version of this check took it for libclang and the RocksDB build then failed.
has_libclang() {
  local dir file name
  for dir in "$@"; do
    [ -d "$dir" ] || continue
    for file in "$dir"/libclang.so "$dir"/libclang-*.so; do
      [ -e "$file" ] || continue
      name=${file##*/}
      case "$name" in
        libclang.so) return 0 ;;
        libclang-[0-9]*.so)
          # libclang-14.so or libclang-14.0.6.so, never libclang-cpp.so
          [[ "$name" =~ ^libclang-[0-9][0-9.]*\.so$ ]] && return 0 ;;
      esac
    done
  done
  return 1
}

# The folders clang-sys searches on Linux, less the ones it needs an environment variable for.
lib_dirs() {
  if [ -n "${JUNBAO_LIB_DIRS:-}" ]; then
    tr ':' '\n' <<<"$JUNBAO_LIB_DIRS"
    return
  fi
  [ -n "${LIBCLANG_PATH:-}" ] && echo "$LIBCLANG_PATH"
  local d
  for d in /usr/lib/llvm-*/lib /usr/local/llvm*/lib* /usr/lib/*-linux-gnu /usr/lib64 /usr/lib \
    /usr/local/lib; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--dry-run]" >&2; exit 2 ;;
esac

mapfile -t dirs < <(lib_dirs)
need=()
has_libclang "${dirs[@]}" || need+=(libclang-dev)
if [ -z "${JUNBAO_LIB_DIRS:-}" ]; then
  command -v c++ >/dev/null 2>&1 || need+=(g++)
  # The ledger-export test reads junbao's export back with hledger, as an auditor would.
  command -v hledger >/dev/null 2>&1 || need+=(hledger)
  # The console's browser tests (tests/console.rs) drive headless Chromium over WebDriver and
  # read the printed transfer sheet back with pdftotext.
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
  # Chinese glyphs for the bilingual transfer sheet when Chromium prints or screenshots it.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
fi

if [ "$dry_run" -eq 1 ]; then
  echo "${need[*]:-nothing}"
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
fi
