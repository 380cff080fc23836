#!/bin/sh
# Installs Debian's chromium when no chromium binary is on PATH, for the
# query API's headless dashboard test. The Makefile runs it before the tests;
# the test itself fails (not skips) when chromium still cannot run.
set -eu
for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null 2>&1; then
		exit 0
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
command -v chromium >/dev/null
