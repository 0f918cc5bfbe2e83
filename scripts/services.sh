#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure the servers the suite talks to are up, and exports
# where they are. A server that is not installed here is left unset, and its tests are skipped
# with the reason — except in CI (CI=true), where conftest.py fails the run instead.

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_ready && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    for v in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true
    done
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  fi
  if pg_ready; then
    export FLOWRUNNER_TEST_POSTGRES_URL=${FLOWRUNNER_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
  fi
fi

if [ "${CI:-}" = "true" ]; then
  export FLOWRUNNER_REQUIRE_SERVICES=1
fi

# Redis (the event bus tests): started when installed but not answering.
redis_ready() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
if command -v redis-cli >/dev/null 2>&1; then
  if ! redis_ready && command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /tmp/flowrunner-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/flowrunner-redis --logfile /tmp/flowrunner-redis/redis.log || true
    for _ in $(seq 1 20); do redis_ready && break; sleep 0.5; done
  fi
  if redis_ready; then
    export FLOWRUNNER_TEST_REDIS_URL=${FLOWRUNNER_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
  fi
fi

# RabbitMQ (the Celery broker tests, tests/e2e/test_celery_workers.py): started when
# installed but not answering; each test uses queues of its own on it and deletes them.
rabbitmq_ready() { (exec 3<>/dev/tcp/127.0.0.1/5672) >/dev/null 2>&1; }
if command -v rabbitmq-server >/dev/null 2>&1; then
  if ! rabbitmq_ready; then
    echo "services: starting RabbitMQ"
    if command -v service >/dev/null 2>&1; then
      service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached || true
    else
      rabbitmq-server -detached || true
    fi
    for _ in $(seq 1 60); do rabbitmq_ready && break; sleep 1; done
  fi
  if rabbitmq_ready; then
    export FLOWRUNNER_TEST_RABBITMQ_URL=${FLOWRUNNER_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672//}
  fi
fi

# Dovecot (the email node tests) is not a service to start here: the tests run their own
# `dovecot -F` from a config in a temp dir on a free port, and skip (fail in CI) when
# /usr/sbin/dovecot is missing. .ci/run installs it (apt-get install dovecot-imapd).
