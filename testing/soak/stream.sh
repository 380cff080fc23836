#!/usr/bin/env bash
# Soak run of the streaming path as separate processes at a steady rate:
# generate → logwatcher → Kafka → stream → dbwriter (results) → Pebble. Every
# 30 s it samples each process's RSS (MB) and CPU (clock ticks, 100/s) into
# OUT/samples.txt, with the stream's reader lag from its /metrics.
#
#   BROKERS=host:port [BIN=bin/adclick] [RATE=20000] [MIN=21] [ADS=1000] [OUT=/tmp/adclick-soak-stream] testing/soak/stream.sh
#
# ADS is the generator's number of ads (Zipf-distributed; 2000000 is the
# seed's cardinality).
# The log and the raw topic grow by about 190 bytes per click (20k/s for 21
# minutes: about 4.7 GB each); OUT/clicks.log is deleted at the end.
set -u
: "${BROKERS:?BROKERS=host:port of a Kafka broker}"
A=${BIN:-bin/adclick}; RATE=${RATE:-20000}; MIN=${MIN:-21}; ADS=${ADS:-1000}; D=${OUT:-/tmp/adclick-soak-stream}
rm -rf "$D"; mkdir -p "$D"
id=soak$(date +%s)
"$A" topics --kafka-brokers "$BROKERS" --raw-topic "$id-raw" --results-topic "$id-res" --dead-letter-topic "$id-dead" \
  --raw-retention 2h --results-retention 2h --dead-letter-retention 2h >"$D/topics.log" 2>&1 || { cat "$D/topics.log"; exit 1; }
"$A" generate --rate "$RATE" --ads "$ADS" --dup-share 0.03 --late-share 0.02 --too-late-share 0.005 --malformed-share 0.005 --out "$D/clicks.log" >"$D/gen.log" 2>&1 &
G=$!
"$A" logwatcher --files "$D/clicks.log" --state "$D/lw.state" --kafka-brokers "$BROKERS" --raw-topic "$id-raw" >"$D/lw.log" 2>&1 &
L=$!
"$A" stream --kafka-brokers "$BROKERS" --raw-topic "$id-raw" --results-topic "$id-res" --dead-letter-topic "$id-dead" \
  --group "$id-stream" --metrics-addr 127.0.0.1:19101 >"$D/stream.log" 2>&1 &
S=$!
"$A" dbwriter --kind results --kafka-brokers "$BROKERS" --results-topic "$id-res" --group "$id-dbw" --store pebble \
  --pebble-dir "$D/pebble" >"$D/dbw.log" 2>&1 &
W=$!
trap 'kill $G 2>/dev/null; kill -INT $L $S $W 2>/dev/null' EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null; }
rss() { awk '/VmRSS/{print int($2/1024)}' "/proc/$1/status" 2>/dev/null; }
t0=$(date +%s)
while :; do
  el=$(($(date +%s) - t0))
  lag=$(curl -s 127.0.0.1:19101/metrics | awk '/^adclick_stream_partition_lag_records/{s+=$2} END{print s+0}')
  echo "t=${el}s load=$(cut -d' ' -f1 /proc/loadavg) stream_rss=$(rss $S) stream_cpu=$(cpu $S) dbw_rss=$(rss $W) dbw_cpu=$(cpu $W) lw_rss=$(rss $L) lw_cpu=$(cpu $L) reader_lag=$lag" >>"$D/samples.txt"
  [ "$el" -ge $((MIN * 60)) ] && break
  sleep 30
done
kill $G; sleep 5; kill -INT $L $S $W; sleep 20; kill -9 $L $S $W 2>/dev/null
rm -f "$D/clicks.log"
trap - EXIT
