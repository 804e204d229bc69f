#!/bin/bash
# bench-segment.sh: what resembledetectsink's segmenting costs, against
# splitmuxsink alone and against one muxer into filesink, on the same input in
# the same run. Two workloads: raw audio -> WAV segments, and H.264 -> MP4
# segments (encoded once beforehand, so that the encoder is not measured).
# Each pipeline runs REPEAT times, interleaved; the script prints the median
# wall time, CPU time (user + sys) and peak RSS (/usr/bin/time %M) of the
# gst-launch-1.0 process, and their ratios to filesink and to splitmuxsink.
# gst-launch-1.0 is pinned to CPU 0 (-P: not), which makes the numbers
# repeatable: unpinned, thread hand-offs across CPUs make them bimodal.
# The element's batches go to http://127.0.0.1:1, where nothing listens: the
# client's POST is refused at once (max-retries=0), so the network costs
# nothing and what is measured is segmenting, spooling and manifests. With -u
# a further row uploads every batch to a spawned API emulator instead. This is
# a benchmark run by hand (docs/benchmarks.md), not a test: it prints ratios,
# it judges nothing.

set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [-b BUILD_DIR] [-r REPEAT] [-a AUDIO_SECONDS] [-v VIDEO_SECONDS]
          [-s SEGMENT_SECONDS] [-d WORK_DIR] [-u] [-P] [-k]
  -b  meson build dir with the plugin in gst/ (default: build)
  -r  runs of each pipeline; medians are printed (default: 5)
  -a  length of the raw audio input, 48 kHz stereo S16LE in 10 ms buffers
      (default: 1800)
  -v  length of the H.264 input, 640x360 30 fps, 2 Mbit/s (default: 600)
  -s  segment length (default: 10)
  -d  where inputs and outputs go (default: a new directory in /dev/shm, so
      that disk writeback does not add noise, removed at the end); a given
      directory keeps the encoded input, which later runs reuse
  -u  also run the element uploading to a spawned emulator (wait-on-eos)
  -P  do not pin gst-launch-1.0 to CPU 0 (taskset -c 0); unpinned, the
      H.264 runs swing between two speeds (x3) with where the scheduler
      puts the demuxer's and the muxer's threads
  -k  keep the work directory even when it was made by the script
EOF
}

build=build
repeat=5
audio_seconds=1800
video_seconds=600
segment_seconds=10
work=
with_upload=0
pin=1
keep=0
while getopts "b:r:a:v:s:d:uPkh" opt; do
  case $opt in
    b) build=$OPTARG ;;
    r) repeat=$OPTARG ;;
    a) audio_seconds=$OPTARG ;;
    v) video_seconds=$OPTARG ;;
    s) segment_seconds=$OPTARG ;;
    d) work=$OPTARG ;;
    u) with_upload=1 ;;
    P) pin=0 ;;
    k) keep=1 ;;
    *) usage; exit 2 ;;
  esac
done

build=$(cd "$build" && pwd)
export GST_PLUGIN_PATH=$build/gst
emulator_program=$build/tests/emulator/resemble-detect-emulator
if ! gst-inspect-1.0 resembledetectsink >/dev/null 2>&1; then
  echo "resembledetectsink not found in $GST_PLUGIN_PATH (build it first)" >&2
  exit 1
fi
for element in x264enc splitmuxsink wavenc mp4mux qtdemux h264parse; do
  if ! gst-inspect-1.0 "$element" >/dev/null 2>&1; then
    echo "GStreamer element $element is missing" >&2
    exit 1
  fi
done

made_work=0
if [ -z "$work" ]; then
  made_work=1
  if [ -d /dev/shm ]; then
    work=$(mktemp -d /dev/shm/bench-segment-XXXXXX)
  else
    work=$(mktemp -d "${TMPDIR:-/tmp}/bench-segment-XXXXXX")
  fi
fi
mkdir -p "$work"
emulator_pid=
cleanup() {
  if [ -n "$emulator_pid" ]; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$work/out" "$work/time" "$work/out.log" "$work/emulator.url" \
    "$work"/results.*
  if [ "$made_work" = 1 ] && [ "$keep" = 0 ]; then
    rm -rf "$work"
  fi
}
trap cleanup EXIT

if [ "$pin" = 1 ]; then
  pin_command=(taskset -c 0)
  pinned="pinned to CPU 0"
else
  pin_command=()
  pinned="not pinned"
fi
segment_ns=$((segment_seconds * 1000000000))
# A pipeline that does not finish in this long has hung.
run_timeout=60
audio_buffers=$((audio_seconds * 100))
video_frames=$((video_seconds * 30))
video_input=$work/input-${video_seconds}s.mp4

if [ ! -s "$video_input" ]; then
  echo "encoding $video_seconds s of H.264 once (not measured) ..."
  gst-launch-1.0 -q videotestsrc num-buffers=$video_frames pattern=smpte \
      horizontal-speed=4 \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 \
      key-int-max=60 \
    ! h264parse ! mp4mux ! filesink location="$video_input.part"
  mv "$video_input.part" "$video_input"
fi

if [ "$with_upload" = 1 ]; then
  if [ ! -x "$emulator_program" ]; then
    echo "$emulator_program is missing (build it first)" >&2
    exit 1
  fi
  # Its upload spool goes where the outputs go; it runs on the other CPU.
  emulator_pin=()
  if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    emulator_pin=(taskset -c 1)
  fi
  TMPDIR=$work "${emulator_pin[@]}" "$emulator_program" --host 127.0.0.1 \
    --port 0 \
    --token bench-token --processing-ms 0 > "$work/emulator.url" &
  emulator_pid=$!
  for _ in $(seq 100); do
    [ -s "$work/emulator.url" ] && break
    sleep 0.05
  done
  emulator_url=$(head -n 1 "$work/emulator.url")
  case $emulator_url in
    http://127.0.0.1:*) ;;
    *) echo "the emulator did not start" >&2; exit 1 ;;
  esac
fi

audio_src="audiotestsrc wave=silence samplesperbuffer=480 \
num-buffers=$audio_buffers ! audio/x-raw,format=S16LE,rate=48000,channels=2"
video_src="filesrc location=$video_input ! qtdemux ! h264parse"
element_refused="resembledetectsink location=$work/out/spool \
segment-duration=$segment_ns api-url=http://127.0.0.1:1 api-token=bench-token \
max-retries=0 wait-on-eos=false keep-files=true"

# name|pipeline, per workload; "@OUT@" is the output directory of the run.
audio_cases=(
  "source only (fakesink)|$audio_src ! fakesink"
  "wavenc ! filesink|$audio_src ! wavenc ! filesink location=@OUT@/all.wav"
  "splitmuxsink|$audio_src ! splitmuxsink muxer-factory=wavenc \
max-size-time=$segment_ns location=@OUT@/segment-%05d.wav"
  "resembledetectsink|$audio_src ! $element_refused"
)
video_cases=(
  "source only (fakesink)|$video_src ! fakesink"
  "mp4mux ! filesink|$video_src ! mp4mux ! filesink location=@OUT@/all.mp4"
  "splitmuxsink|$video_src ! splitmuxsink muxer-factory=mp4mux \
max-size-time=$segment_ns location=@OUT@/segment-%05d.mp4"
  "resembledetectsink|$video_src ! $element_refused"
)
if [ "$with_upload" = 1 ]; then
  element_upload="resembledetectsink location=$work/out/spool \
segment-duration=$segment_ns api-url=$emulator_url api-token=bench-token \
keep-files=true poll-interval=1000000000 fetch-results=false"
  audio_cases+=("resembledetectsink + upload|$audio_src ! $element_upload")
  video_cases+=("resembledetectsink + upload|$video_src ! $element_upload")
fi

# Runs one pipeline; appends "wall_s cpu_s rss_kB files bytes" to $1. A run
# that hangs is killed after $run_timeout s and run again (at most twice):
# plain splitmuxsink in GStreamer 1.22 sometimes never posts EOS on a fast
# non-live input (about 1 run in 40 here); such a run is not measured.
run_once() {
  local results=$1 pipeline=$2
  local start end files bytes rc attempt
  pipeline=${pipeline//@OUT@/$work/out}
  for attempt in 1 2 3; do
    rm -rf "$work/out"
    mkdir -p "$work/out"
    start=$(date +%s%N)
    rc=0
    # shellcheck disable=SC2086 # the pipeline is words for gst-launch
    /usr/bin/time -f '%U %S %M' -o "$work/time" \
      "${pin_command[@]}" timeout "$run_timeout" gst-launch-1.0 -q $pipeline \
      > "$work/out.log" 2>&1 || rc=$?
    end=$(date +%s%N)
    if [ "$rc" = 0 ]; then
      break
    fi
    if ! grep -q "non-zero status 124" "$work/time" || [ "$attempt" = 3 ]; then
      echo "FAILED: gst-launch-1.0 $pipeline" >&2
      cat "$work/out.log" >&2
      exit 1
    fi
    echo "  (hung for $run_timeout s and was killed, run again:" \
      "${pipeline:0:60}...)" >&2
  done
  files=$(find "$work/out" -type f \( -name '*.wav' -o -name '*.mp4' \) | wc -l)
  bytes=$(find "$work/out" -type f \( -name '*.wav' -o -name '*.mp4' \) \
    -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  awk -v wall="$(( (end - start) / 1000 ))" -v files="$files" \
    -v bytes="$bytes" '{ printf "%.6f %.3f %d %d %d\n", wall / 1e6, $1 + $2,
      $3, files, bytes }' "$work/time" >> "$results"
}

median() {
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs every case of a workload $repeat times, interleaved, and prints the
# table.
bench_workload() {
  local title=$1
  shift
  local cases=("$@")
  local n=${#cases[@]} i r
  for ((i = 0; i < n; i++)); do
    : > "$work/results.$i"
  done
  # One unmeasured run of each first: page cache, registry, plugin loading.
  for ((i = 0; i < n; i++)); do
    run_once /dev/null "${cases[i]#*|}"
  done
  for ((r = 0; r < repeat; r++)); do
    for ((i = 0; i < n; i++)); do
      run_once "$work/results.$i" "${cases[i]#*|}"
    done
  done

  local -a wall cpu rss files mbytes
  for ((i = 0; i < n; i++)); do
    wall[i]=$(cut -d' ' -f1 "$work/results.$i" | median)
    cpu[i]=$(cut -d' ' -f2 "$work/results.$i" | median)
    rss[i]=$(cut -d' ' -f3 "$work/results.$i" | median)
    files[i]=$(tail -n 1 "$work/results.$i" | cut -d' ' -f4)
    mbytes[i]=$(tail -n 1 "$work/results.$i" | awk '{ printf "%.1f", $5 / 1e6 }')
  done

  echo
  echo "$title"
  printf '  %-27s %6s %8s %7s %7s %8s %8s %8s %8s %8s %8s\n' "" "" \
    "" "" "peak" "wall /" "wall /" "CPU /" "CPU /" "RSS /" "RSS /"
  printf '  %-27s %6s %8s %7s %7s %8s %8s %8s %8s %8s %8s\n' "pipeline" \
    "files" "wall s" "CPU s" "RSS MB" "filesink" "splitmux" "filesink" \
    "splitmux" "filesink" "splitmux"
  for ((i = 0; i < n; i++)); do
    awk -v name="${cases[i]%%|*}" -v files="${files[i]}" -v mb="${mbytes[i]}" \
      -v w="${wall[i]}" -v c="${cpu[i]}" -v m="${rss[i]}" \
      -v w1="${wall[1]}" -v c1="${cpu[1]}" -v m1="${rss[1]}" \
      -v w2="${wall[2]}" -v c2="${cpu[2]}" -v m2="${rss[2]}" 'BEGIN {
        printf "  %-27s %6s %8.3f %7.3f %7.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n",
          name, files, w, c, m / 1024, w / w1, w / w2, c / c1, c / c2,
          m / m1, m / m2 }'
  done
}

echo "bench-segment: $(nproc) cores, $repeat runs of each pipeline (medians," \
  "interleaved), gst-launch-1.0 $pinned, outputs in $work"
echo "plugin: $GST_PLUGIN_PATH; segments of $segment_seconds s; the element's" \
  "uploads refused at 127.0.0.1:1 (max-retries=0, wait-on-eos=false)"
echo "files: media files the run left (the element: keep-files=true);" \
  "ratios are to the filesink and splitmuxsink rows"

bench_workload "raw audio -> WAV: $audio_seconds s of 48 kHz stereo S16LE in \
10 ms buffers (audiotestsrc wave=silence)" "${audio_cases[@]}"
bench_workload "H.264 -> MP4: $video_seconds s of 640x360 30 fps, \
$(du -m "$video_input" | cut -f1) MB (filesrc ! qtdemux ! h264parse)" \
  "${video_cases[@]}"
