#!/usr/bin/env bash
# Installs the Debian packages bouncetag needs (ffmpeg for M4A/ffprobe, espeak-ng + sox for the
# demo and tests, tmux for the dashboard test) when any is missing. Safe to run repeatedly.
set -euo pipefail
need=()
for cmd in ffmpeg:ffmpeg ffprobe:ffmpeg espeak-ng:espeak-ng sox:sox tmux:tmux; do
  command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
