#!/usr/bin/env bash
# A private PostgreSQL for the local cluster and the tests: no system
# service, no TCP port, a Unix socket in a directory of its own.
#
#   scripts/pg.sh start  --dir D    initdb D/pgdata once, start, create the
#                                   database `cairn`, print the conninfo
#   scripts/pg.sh stop   --dir D    fast shutdown of the postmaster of D/pgdata
#   scripts/pg.sh status --dir D    "running pid=N" (exit 0) or "stopped" (exit 3)
#
# Layout under D: D/pgdata (the cluster, superuser `cairn`, trust auth over
# the socket only), D/pgsock (the socket directory, mode 0700: only its owner
# and root can connect), D/logs/postgres.log, and D/pg.conninfo holding
#   host=D/pgsock port=5432 dbname=cairn user=cairn
# (the line `start` also prints). The port is always 5432: the socket
# directory is private, so it never clashes with another server.
#
# fsync stays on unless PG_FSYNC=off is set (tests: the data is thrown away).
# Binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/<ver>/bin, else
# `pg_config --bindir`.
#
# PostgreSQL refuses to run as root. Run as root, this script runs initdb,
# postgres and psql as the unprivileged `postgres` user (Debian's postgresql
# package creates it): D/pgdata, D/pgsock and the log file are owned by it,
# and every directory above D/pgdata must be traversable by it. Directories
# on that path that root owns and that postgres cannot enter get o+x (search
# only: names cannot be listed); each change is reported on stderr. A
# directory owned by someone else is never changed: the script stops with an
# error instead. Run as any other user, everything runs as that user.
set -euo pipefail

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "pg.sh: $*" >&2; exit 1; }

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case "$cmd" in
  start|stop|status) ;;
  -h|--help|help) usage 0 ;;
  *) echo "pg.sh: unknown command '$cmd'" >&2; usage ;;
esac
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || { echo "pg.sh: --dir needs a value" >&2; exit 2; }; dir=$2; shift ;;
    -h|--help) usage 0 ;;
    *) echo "pg.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[ -n "$dir" ] || { echo "pg.sh: --dir is required" >&2; exit 2; }

fsync=${PG_FSYNC:-on}
case "$fsync" in on|off) ;; *) echo "pg.sh: PG_FSYNC must be on or off, not '$fsync'" >&2; exit 2 ;; esac

# The directory ends up inside a conninfo string and a postgresql.conf
# value: refuse the characters that would need quoting there rather than
# risk a half-parsed setting.
case "$dir" in
  *[[:space:]]*|*\'*|*\"*|*\\*|*,*|*=*|*\$*)
    echo "pg.sh: --dir '$dir' contains a space, quote, backslash, comma, '=' or '\$'" >&2; exit 2 ;;
esac

port=5432
if [ "$cmd" = start ]; then
  mkdir -p "$dir"
elif [ ! -d "$dir" ]; then
  [ "$cmd" = status ] && { echo stopped; exit 3; }
  exit 0 # stop: nothing was ever started there
fi
dir=$(cd "$dir" && pwd -P)
pgdata=$dir/pgdata
sock=$dir/pgsock
log=$dir/logs/postgres.log
# A Unix socket path is at most 107 bytes: D/pgsock/.s.PGSQL.5432.
if [ $(( ${#sock} + 15 )) -gt 107 ]; then
  echo "pg.sh: --dir $dir is too long for a Unix socket path (at most $(( 107 - 15 - 7 )) characters)" >&2
  exit 2
fi

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] || continue
    if [ -z "$best" ] || [ "$(basename "$(dirname "$d")")" -gt "$(basename "$(dirname "$best")")" ] 2>/dev/null; then
      best=$d
    fi
  done
  if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then best=$(pg_config --bindir); fi
  echo "$best"
}

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

# as_pg CMD...: run as the user that owns the server.
as_pg() {
  if [ "$is_root" -eq 1 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Is the process alive? A zombie (dead, not yet reaped by init, which is
# the parent of a postmaster pg_ctl started) counts as gone.
alive() { # pid
  kill -0 "$1" 2>/dev/null || return 1
  case "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" in Z|X) return 1 ;; esac
  return 0
}

# The postmaster PID of pgdata, if that process is alive and really serves
# pgdata (its working directory is the data directory), else nothing.
postmaster_pid() {
  local p
  p=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null) || return 0
  case "$p" in ''|*[!0-9]*) return 0 ;; esac
  kill -0 "$p" 2>/dev/null || return 0
  # A zombie (killed, not yet reaped) has no cwd link any more.
  if [ -d "/proc/$p" ] && [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" != "$pgdata" ]; then
    return 0
  fi
  echo "$p"
}

# Make every directory from / down to `path` traversable by postgres (see
# the header). Only called as root.
open_path_for_postgres() { # path
  command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) is needed to run PostgreSQL as root"
  id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (apt-get install postgresql)"
  local path=$1 owner d
  local chain=()
  while [ "$path" != / ] && [ -n "$path" ]; do chain=("$path" "${chain[@]}"); path=$(dirname "$path"); done
  for d in "${chain[@]}"; do
    if runuser -u postgres -- test -x "$d" 2>/dev/null; then continue; fi
    owner=$(stat -c %u "$d")
    [ "$owner" = 0 ] || die "the postgres user cannot enter $d (owned by uid $owner); pick a --dir it can reach"
    chmod o+x "$d"
    echo "pg.sh: made $d traversable (o+x) for the postgres user" >&2
  done
}

start() {
  local bindir
  bindir=$(find_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
    die "PostgreSQL server binaries not found (install the postgresql package or set PG_BINDIR)"
  fi
  mkdir -p "$dir/logs"
  if [ "$is_root" -eq 1 ]; then open_path_for_postgres "$dir/logs"; fi

  local owner=""
  [ "$is_root" -eq 1 ] && owner=postgres
  if [ ! -s "$pgdata/PG_VERSION" ]; then
    [ ! -e "$pgdata" ] || [ -z "$(ls -A "$pgdata")" ] ||
      die "$pgdata exists but holds no PostgreSQL cluster; remove it or pick another --dir"
    mkdir -p "$pgdata"
    chmod 700 "$pgdata"
    [ -z "$owner" ] || chown "$owner:" "$pgdata"
    if ! as_pg "$bindir/initdb" -D "$pgdata" --no-sync -A trust -U cairn -E UTF8 --locale=C \
        >>"$log.initdb" 2>&1; then
      tail -n 20 "$log.initdb" >&2 || true
      rm -rf "$pgdata"
      die "initdb failed (see $log.initdb)"
    fi
    # Our settings live in one file of their own, rewritten at every start.
    echo "include_if_exists = 'cairn.conf'" >>"$pgdata/postgresql.conf"
  fi
  mkdir -p "$sock"
  chmod 700 "$sock"
  touch "$log"
  if [ -n "$owner" ]; then chown "$owner:" "$sock" "$log"; fi
  {
    echo "# written by scripts/pg.sh at every start"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$sock'"
    echo "port = $port"
    echo "fsync = $fsync"
    echo "logging_collector = off"
  } >"$pgdata/cairn.conf"
  [ -z "$owner" ] || chown "$owner:" "$pgdata/cairn.conf"

  if [ -z "$(postmaster_pid)" ]; then
    # A postmaster that was just killed may linger as a zombie until init
    # reaps it; PostgreSQL refuses to start while its PID still exists.
    local old
    old=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)
    case "$old" in ''|*[!0-9]*) old="" ;; esac
    for _ in $(seq 1 100); do
      if [ -z "$old" ] || ! kill -0 "$old" 2>/dev/null; then break; fi
      sleep 0.1
    done
    # -w -t: pg_ctl itself waits (bounded) until the server accepts connections.
    # shellcheck disable=SC2094 # pg_ctl's own messages and the server's share the log
    if ! as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$log" -w -t 60 start >>"$log" 2>&1; then
      tail -n 20 "$log" >&2 || true
      die "PostgreSQL did not start (see $log)"
    fi
  fi
  local ok=0
  for _ in $(seq 1 100); do
    if as_pg "$bindir/pg_isready" -q -h "$sock" -p "$port" -d postgres -U cairn; then ok=1; break; fi
    sleep 0.1
  done
  [ "$ok" -eq 1 ] || die "PostgreSQL is not ready after 10 s (see $log)"

  local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U cairn)
  if [ -z "$(as_pg "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'cairn'")" ]; then
    as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE cairn OWNER cairn" >/dev/null ||
      die "cannot create the database cairn (see $log)"
  fi
  local conninfo="host=$sock port=$port dbname=cairn user=cairn"
  printf '%s\n' "$conninfo" >"$dir/pg.conninfo"
  printf '%s\n' "$conninfo"
}

stop() {
  local p bindir
  p=$(postmaster_pid)
  [ -n "$p" ] || return 0
  bindir=$(find_bindir)
  # Fast shutdown: clients are disconnected, the server checkpoints and exits.
  if [ -n "$bindir" ] && [ -x "$bindir/pg_ctl" ]; then
    as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  else
    kill -INT "$p" 2>/dev/null || true
  fi
  for _ in $(seq 1 100); do alive "$p" || return 0; sleep 0.1; done
  # Still there: immediate shutdown (crash recovery at the next start), then kill.
  kill -QUIT "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$p" || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  echo "pg.sh: postmaster $p did not stop in time; killed" >&2
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    p=$(postmaster_pid)
    if [ -n "$p" ]; then echo "running pid=$p"; else echo stopped; exit 3; fi
    ;;
esac
