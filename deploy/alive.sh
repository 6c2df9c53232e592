# Sourced by the deploy scripts. `alive PID`: the process runs. `kill -0` alone also succeeds for a
# zombie, which a process killed with -9 stays until init reaps it (up to ~2 s here): then a
# `demo.sh up` right after the kill said "already running" and started nothing.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ "${state:0:1}" != Z ]
}
