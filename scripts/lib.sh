# scripts/lib.sh: settings and helpers shared by the project's shell scripts. Sourced, not run.
# Every path and version the scripts use is here, so there is one place to change them.

CGW_ROOT=${CGW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Downloads and builds that survive a fresh clone (jars, librdkafka, hiredis).
CGW_CACHE=${CGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cgw}
# Everything the local stack writes: data, logs, pids. Git-ignored.
CGW_VAR=${CGW_VAR:-$CGW_ROOT/var}

LIBRDKAFKA_VERSION=2.8.0
LIBRDKAFKA_DEBIAN_VERSION=2.8.0-1
HIREDIS_VERSION=1.2.0
HIREDIS_DEBIAN_VERSION=1.2.0-6
KAFKA_VERSION=4.1.1
NEO4J_VERSION=5.26.30

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
# Kafka's second listener: SASL_SSL with MSK-style IAM tokens over OAUTHBEARER (scripts/stack).
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-9098}
# The one AWS region whose MSK IAM tokens that listener accepts.
KAFKA_IAM_REGION=${KAFKA_IAM_REGION:-eu-central-1}
NEO4J_BOLT_PORT=${NEO4J_BOLT_PORT:-7687}
NEO4J_HTTP_PORT=${NEO4J_HTTP_PORT:-7474}
NEO4J_USER=neo4j
NEO4J_PASSWORD=${NEO4J_PASSWORD:-cgw-local-password}
VALKEY_PORT=${VALKEY_PORT:-6390}
# Valkey's TLS listener (certificates made by scripts/stack under var/valkey/tls/) and the ACL
# user the TLS tests and the TLS demo authenticate as (least privilege: see scripts/stack).
VALKEY_TLS_PORT=${VALKEY_TLS_PORT:-6391}
VALKEY_ACL_USER=${VALKEY_ACL_USER:-cgw}
VALKEY_ACL_PASSWORD=${VALKEY_ACL_PASSWORD:-cgw-local-valkey-password}
JAVA17_HOME=${JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
