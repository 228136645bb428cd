#!/usr/bin/env bash
# Installs dsinfer's build and test dependencies (Debian packages only).
set -euo pipefail
pkgs=(cmake g++ pkg-config nlohmann-json3-dev libpcre2-dev libcli11-dev libcpp-httplib-dev
      libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev redis-server)
# Node.js (for the openai-client tests) may come from another repository with npm built in.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The official openai npm client used by tests/server (version pinned in its package.json).
(cd "$(dirname "$0")/../tests/server/openai_client" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
