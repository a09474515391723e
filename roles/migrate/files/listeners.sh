# Listening TCP sockets: "<port> <address> <process> <systemd unit>" per line (sh -s).
ss -Hltnp | while read -r _state _recvq _sendq local _peer rest; do
  pid=$(printf '%s' "$rest" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
  proc=$(printf '%s' "$rest" | sed -n 's/.*(("\([^"]*\)".*/\1/p')
  unit=""
  [ -n "$pid" ] && unit=$(ps -o unit= -p "$pid" 2>/dev/null | tr -d ' ')
  echo "${local##*:} $local ${proc:--} ${unit:--}"
done
