#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start them with the system's own commands if
# they are installed but down; fail with a clear message if they are absent.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # name host port
  for _ in $(seq 1 40); do answers "$2" "$3" && return 0; sleep 0.25; done
  echo "error: $1 did not start answering on $2:$3" >&2; return 1
}

if ! answers $PG_HOST $PG_PORT; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is down: starting it"
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_for PostgreSQL $PG_HOST $PG_PORT
  else
    echo "error: PostgreSQL is not answering on $PG_HOST:$PG_PORT and is not installed here." >&2
    echo "       Install it (Debian: apt-get install postgresql) or set DATABASE_URL to a server you run." >&2
    exit 1
  fi
fi

if ! answers $PG_HOST $REDIS_PORT; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is down: starting it"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis $PG_HOST $REDIS_PORT
  else
    echo "error: Redis is not answering on $PG_HOST:$REDIS_PORT and is not installed here." >&2
    echo "       Install it (Debian: apt-get install redis-server) or set CELERY_BROKER_URL." >&2
    exit 1
  fi
fi
echo "PostgreSQL and Redis answer on $PG_HOST"
