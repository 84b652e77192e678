#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test junbao: libclang (bindgen, for the
# RocksDB crate), a C++ compiler, and hledger (the ledger-export test). Does nothing when they are already there.
set -euo pipefail
need=()
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libclang; then
  need+=(libclang-dev)
fi
command -v c++ >/dev/null 2>&1 || need+=(g++)
# The ledger-export test reads junbao's export back with hledger, as an auditor would.
command -v hledger >/dev/null 2>&1 || need+=(hledger)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
fi
