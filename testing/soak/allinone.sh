#!/usr/bin/env bash
# Soak run of `adclick allinone` at its defaults (what `make run` starts):
# every 30 s its RSS (MB) and CPU (clock ticks, 100/s) go to OUT/samples.txt;
# at the end OUT/summary.txt has RSS at minute 6 against the lowest and highest
# after it (the ±15 % target), and the cores used over minutes 5–20.
# With PPROF=127.0.0.1:PORT, a heap profile per minute goes to OUT/heap_mN.pb.gz
# (`go tool pprof -top -sample_index=inuse_space OUT/heap_m10.pb.gz`).
#
#   [BIN=bin/adclick] [MIN=21] [OUT=/tmp/adclick-soak-allinone] [PPROF=] testing/soak/allinone.sh
set -u
A=${BIN:-bin/adclick}; MIN=${MIN:-21}; D=${OUT:-/tmp/adclick-soak-allinone}; PP=${PPROF:-}
HZ=$(getconf CLK_TCK)
rm -rf "$D"; mkdir -p "$D"
"$A" allinone --data-dir "$D/data" --listen 127.0.0.1:18081 ${PP:+--pprof-addr "$PP"} >"$D/allinone.log" 2>&1 &
P=$!
# Stop it as Ctrl-C does and wait, so a following run does not overlap its shutdown.
trap 'kill -INT $P 2>/dev/null; wait $P 2>/dev/null' EXIT
t0=$(date +%s)
while :; do
  el=$(($(date +%s) - t0))
  if ! kill -0 "$P" 2>/dev/null; then
    echo "allinone exited early at t=${el}s; see $D/allinone.log" | tee -a "$D/samples.txt" >&2
    exit 1
  fi
  echo "t=${el}s load=$(cut -d' ' -f1 /proc/loadavg) rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$P/status) cpu_ticks=$(awk '{print $14+$15}' /proc/$P/stat)" >>"$D/samples.txt"
  if [ -n "$PP" ] && [ $((el % 60)) -lt 30 ] && [ "$el" -ge 60 ]; then
    curl -s -o "$D/heap_m$((el / 60)).pb.gz" "http://$PP/debug/pprof/heap"
  fi
  [ "$el" -ge $((MIN * 60)) ] && break
  sleep 30
done
# Per sample: seconds, RSS, ticks. Minute 6 is the first sample at or after 360 s.
grep '^t=' "$D/samples.txt" | sed -E 's/^t=([0-9]+)s .*rss_mb=([0-9]+) cpu_ticks=([0-9]+)$/\1 \2 \3/' |
  awk -v hz="$HZ" '
    $1 >= 360 && !ref { ref = $2; next }
    ref && !n { lo = $2; hi = $2; n = 1 }
    ref { lo = ($2 < lo ? $2 : lo); hi = ($2 > hi ? $2 : hi) }
    $1 >= 300 && !c0 { t0 = $1; c0 = $3 }
    $1 <= 1200 { t1 = $1; c1 = $3 }
    END {
      if (!n) { print "no sample after minute 6: no summary"; exit }
      printf "rss_mb minute6=%d min_after=%d (%+.1f%%) max_after=%d (%+.1f%%)\n", ref, lo, (lo / ref - 1) * 100, hi, (hi / ref - 1) * 100
      if (t1 > t0) printf "cpu cores t=%ds..%ds: %.2f\n", t0, t1, (c1 - c0) / hz / (t1 - t0)
    }' | tee "$D/summary.txt"
