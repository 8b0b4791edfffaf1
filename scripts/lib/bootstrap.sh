# Shared set-up for scripts/run-service and scripts/run-tests: a venv, and (for tests) Redis and
# PostgreSQL, reused when reachable, else started as throwaway instances, installed when missing.
# Sourced, not executed.

PRIVNUM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${PRIVNUM_VENV:-$PRIVNUM_ROOT/.venv}
RUN_DIR=${PRIVNUM_RUN_DIR:-$PRIVNUM_ROOT/.privnum/run}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "missing system packages ($*); install them or run as root"
  say "installing Debian packages: $*"
  if [ -z "${PRIVNUM_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    PRIVNUM_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed"
}

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# ensure_venv EXTRAS: create .venv and install the project (editable) with the given extras.
ensure_venv() {
  local extras=$1 python stamp
  python=$(find_python) || { apt_install python3 python3-venv; python=$(find_python) \
    || die "Python 3.11 or newer is required"; }
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment in $VENV"
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$python" -m venv "$VENV" || die "cannot create a virtual environment"
    fi
  fi
  # Reinstall only when the dependency list changed: a second run starts in seconds.
  stamp="$VENV/.privnum-$extras-$(sha256sum "$PRIVNUM_ROOT/setup.cfg" | cut -c1-16)"
  if [ ! -e "$stamp" ]; then
    say "installing privnum and its dependencies ($extras); log: $RUN_DIR/pip.log"
    mkdir -p "$RUN_DIR"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip \
           && "$VENV/bin/python" -m pip install -e "$PRIVNUM_ROOT[$extras]"; } >"$RUN_DIR/pip.log" 2>&1; then
      tail -n 20 "$RUN_DIR/pip.log" >&2
      die "installing privnum failed (full log: $RUN_DIR/pip.log)"
    fi
    rm -f "$VENV"/.privnum-"$extras"-*
    touch "$stamp"
  fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ensure_redis: export PRIVNUM_TEST_REDIS_URL for a reachable Redis.
ensure_redis() {
  if [ -n "${PRIVNUM_TEST_REDIS_URL:-}" ]; then return 0; fi
  if port_open 127.0.0.1 6379; then
    export PRIVNUM_TEST_REDIS_URL=redis://127.0.0.1:6379/15; return 0
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  mkdir -p "$RUN_DIR/redis"
  say "starting a throwaway Redis on 127.0.0.1:6390"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6390 --save "" --appendonly no \
    --dir "$RUN_DIR/redis" --pidfile "$RUN_DIR/redis/redis.pid" \
    --logfile "$RUN_DIR/redis/redis.log" >&2 || die "redis-server did not start"
  for _ in $(seq 50); do port_open 127.0.0.1 6390 && break; sleep 0.1; done
  port_open 127.0.0.1 6390 || die "redis-server did not open port 6390 (see $RUN_DIR/redis/redis.log)"
  export PRIVNUM_TEST_REDIS_URL=redis://127.0.0.1:6390/15
}

# ensure_postgres: export PRIVNUM_TEST_PG_URL for a reachable PostgreSQL (trust auth).
ensure_postgres() {
  if [ -n "${PRIVNUM_TEST_PG_URL:-}" ]; then return 0; fi
  if port_open 127.0.0.1 5432 && pg_accepts 5432; then
    export PRIVNUM_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test; return 0
  fi
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bindir" ]; then apt_install postgresql; bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
  local data="$RUN_DIR/pg" owner
  owner=$(id -un)
  if is_root; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    owner=postgres
  fi
  mkdir -p "$data"; chown "$owner" "$data" "$RUN_DIR" 2>/dev/null || true
  as_owner() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising a throwaway PostgreSQL cluster in $data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null || die "initdb failed"
  fi
  if ! port_open 127.0.0.1 5433; then
    say "starting the throwaway PostgreSQL on 127.0.0.1:5433"
    as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-h 127.0.0.1 -p 5433 -k $data" start >/dev/null || die "PostgreSQL did not start (see $data/server.log)"
  fi
  as_owner "$bindir/psql" -h 127.0.0.1 -p 5433 -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
    || as_owner "$bindir/createdb" -h 127.0.0.1 -p 5433 -U postgres test
  export PRIVNUM_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5433/test
}

pg_accepts() {
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(f"postgresql://postgres@127.0.0.1:{sys.argv[1]}/test", connect_timeout=3).close()
PY
}

# ensure_systemd_analyze: the tests verify privnum's systemd units with systemd-analyze (Debian's
# systemd package). Without root it cannot be installed; those tests then say so and skip.
ensure_systemd_analyze() {
  command -v systemd-analyze >/dev/null 2>&1 && return 0
  if is_root; then apt_install systemd; else say "systemd-analyze missing: the systemd unit test is skipped"; fi
}

# ensure_chromium: the console's browser tests drive Debian's headless Chromium (never a
# downloaded browser). Without root it cannot be installed; those tests then say so and skip.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  if is_root; then apt_install chromium; else say "chromium missing: the console's browser tests are skipped"; fi
}
