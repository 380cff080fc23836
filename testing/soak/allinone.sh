#!/usr/bin/env bash
# Soak run of `adclick allinone` at its defaults (what `make run` starts):
# every 30 s its RSS (MB) and CPU (clock ticks, 100/s) go to OUT/samples.txt.
#
#   [BIN=bin/adclick] [MIN=21] [OUT=/tmp/adclick-soak-allinone] testing/soak/allinone.sh
set -u
A=${BIN:-bin/adclick}; MIN=${MIN:-21}; D=${OUT:-/tmp/adclick-soak-allinone}
rm -rf "$D"; mkdir -p "$D"
"$A" allinone --data-dir "$D/data" --listen 127.0.0.1:18081 >"$D/allinone.log" 2>&1 &
P=$!
trap 'kill -INT $P 2>/dev/null' EXIT
t0=$(date +%s)
while :; do
  el=$(($(date +%s) - t0))
  echo "t=${el}s load=$(cut -d' ' -f1 /proc/loadavg) rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$P/status) cpu_ticks=$(awk '{print $14+$15}' /proc/$P/stat)" >>"$D/samples.txt"
  [ "$el" -ge $((MIN * 60)) ] && break
  sleep 30
done
