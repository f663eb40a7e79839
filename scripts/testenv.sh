#!/usr/bin/env bash
# testenv.sh CMD [ARGS...]
#
# Runs CMD with real Redis (one node and a 3-node Cluster) and two Memcached
# servers on free loopback ports, exported as HTTPSESSION_REDIS_ADDR,
# HTTPSESSION_REDIS_CLUSTER_ADDRS and HTTPSESSION_MEMCACHED_ADDRS, and with
# two replicated Redis setups that only the failover tests use, because they
# kill a primary:
#   - a primary with one replica, watched by three Sentinels:
#     HTTPSESSION_REDIS_SENTINEL_ADDRS (the Sentinels) and
#     HTTPSESSION_REDIS_SENTINEL_MASTER (the name they monitor it under);
#   - a Cluster of three masters with one replica each:
#     HTTPSESSION_REDIS_FAILOVER_CLUSTER_ADDRS.
# Their servers run from a config file in a data directory of their own, with
# a pidfile there: a test that killed one can start it again from `INFO
# server`'s executable and config_file, and this script stops it on exit by
# that pidfile. DEBUG is enabled for local clients, so a test can freeze a
# replica (DEBUG SLEEP). Installs the
# Debian packages that are missing (non-interactively, as root), including the
# Python ones the aiohttp_session interop tests import under /usr/bin/python3,
# and stops every server on exit, whether CMD passed or failed.
set -euo pipefail

log() { printf 'testenv: %s\n' "$*" >&2; }

# need PKG BINARY...: installs PKG when any BINARY is missing.
need() {
	local pkg=$1 missing=
	shift
	for bin in "$@"; do command -v "$bin" >/dev/null 2>&1 || missing=1; done
	[ -z "$missing" ] && return 0
	install_pkg "$pkg"
}

# need_py PKG MODULE...: installs PKG when Debian's system Python cannot
# import any MODULE. The aiohttp_session interop tests run under
# /usr/bin/python3, not whatever python3 comes first on the PATH.
need_py() {
	local pkg=$1 missing=
	shift
	for mod in "$@"; do /usr/bin/python3 -c "import $mod" >/dev/null 2>&1 || missing=1; done
	[ -z "$missing" ] && return 0
	install_pkg "$pkg"
}

install_pkg() {
	local pkg=$1 sudo=
	[ "$(id -u)" = 0 ] || sudo="sudo -n"
	log "installing $pkg"
	if [ -z "${TESTENV_APT_UPDATED:-}" ]; then
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		TESTENV_APT_UPDATED=1
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2
}

need redis-server redis-server
need redis-tools redis-cli
need memcached memcached
need python3 /usr/bin/python3
need_py python3-cryptography cryptography.fernet
need_py python3-nacl nacl.secret
need_py python3-redis redis.asyncio
need_py python3-pymemcache pymemcache.client.base
need_py python3-aiohttp aiohttp
need_py python3-aiohttp-session aiohttp_session aiohttp_session.cookie_storage aiohttp_session.nacl_storage
need_py python3-setuptools distutils.version # aiohttp_session 2.11's redis_storage imports it

tmp=$(mktemp -d "${TMPDIR:-/tmp}/httpsession-testenv.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	# Servers a failover test started again after killing them are not our
	# children: stop them by their pidfiles, and wait until they are gone.
	local f pid
	for f in "$tmp"/*/redis.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	for f in "$tmp"/*/redis.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT INT TERM

# free_port sets PORT to a loopback TCP port nobody listens on (and we have not
# handed out yet). Ports come from 20000-22767: below Linux's ephemeral range
# (32768+), so outgoing connections cannot take them meanwhile, and such that
# a Cluster node's bus port, port+10000, is in range and checked free too.
used=" "
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 2768))
		case "$used" in *" $p "*) continue ;; esac
		if port_free "$p" && port_free $((p + 10000)); then
			used="$used$p "
			PORT=$p
			return
		fi
	done
}

wait_redis() {
	for _ in $(seq 100); do
		redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "redis on port $1 did not start"; return 1
}

start_redis() { # port [extra args]
	local port=$1
	shift
	mkdir -p "$tmp/redis-$port"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis-$port" \
		--save '' --appendonly no --daemonize no --logfile "$tmp/redis-$port.log" "$@" &
	pids+=($!)
	wait_redis "$port" || { tail -5 "$tmp/redis-$port.log" >&2; return 1; }
}

free_port
redis_port=$PORT
start_redis "$redis_port"

cluster=()
for _ in 1 2 3; do
	free_port
	p=$PORT
	start_redis "$p" --cluster-enabled yes --cluster-config-file "$tmp/nodes-$p.conf" --cluster-node-timeout 2000
	cluster+=("127.0.0.1:$p")
done
redis-cli --cluster create "${cluster[@]}" --cluster-replicas 0 --cluster-yes >"$tmp/cluster-create.log" 2>&1 ||
	{ cat "$tmp/cluster-create.log" >&2; exit 1; }
for node in "${cluster[@]}"; do
	for i in $(seq 200); do
		redis-cli -p "${node#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
		[ "$i" = 200 ] && { log "cluster node $node never reached cluster_state:ok"; exit 1; }
		sleep 0.05
	done
done

# start_conf_redis PORT [CONFIG LINES...]: a server of the failover setups,
# from a config file in its own data directory (see the top of this file).
start_conf_redis() {
	local port=$1 dir="$tmp/redis-$1"
	shift
	mkdir -p "$dir"
	{
		printf '%s\n' "bind 127.0.0.1" "port $port" "dir $dir" "save \"\"" "appendonly no" \
			"daemonize no" "logfile $dir/redis.log" "pidfile $dir/redis.pid" "enable-debug-command local" \
			"repl-diskless-sync-delay 0"
		printf '%s\n' "$@"
	} >"$dir/redis.conf"
	redis-server "$dir/redis.conf" &
	pids+=($!)
	# A test may kill it: no "Killed" notice from this shell then. cleanup
	# stops it by its pid and, like a restarted one, waits on its pidfile.
	disown $!
	wait_redis "$port" || { tail -5 "$dir/redis.log" >&2; return 1; }
}

# wait_for TRIES WHAT CMD...: runs CMD every 0.1s until it succeeds.
wait_for() {
	local tries=$1 what=$2
	shift 2
	for _ in $(seq "$tries"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "$what"; return 1
}

# Sentinel: a primary, one replica, three Sentinels (quorum 2). A primary
# that does not answer for 1s is down; the failover takes a few seconds.
sentinel_master=httpsession-primary
free_port
primary_port=$PORT
start_conf_redis "$primary_port"
free_port
replica_port=$PORT
start_conf_redis "$replica_port" "replicaof 127.0.0.1 $primary_port"
sentinels=()
for _ in 1 2 3; do
	free_port
	p=$PORT
	mkdir -p "$tmp/sentinel-$p"
	printf '%s\n' "bind 127.0.0.1" "port $p" "dir $tmp/sentinel-$p" "daemonize no" \
		"logfile $tmp/sentinel-$p/sentinel.log" \
		"sentinel monitor $sentinel_master 127.0.0.1 $primary_port 2" \
		"sentinel down-after-milliseconds $sentinel_master 1000" \
		"sentinel failover-timeout $sentinel_master 4000" \
		"sentinel parallel-syncs $sentinel_master 1" >"$tmp/sentinel-$p/sentinel.conf"
	redis-server "$tmp/sentinel-$p/sentinel.conf" --sentinel &
	pids+=($!)
	wait_redis "$p" || { tail -5 "$tmp/sentinel-$p/sentinel.log" >&2; exit 1; }
	sentinels+=("127.0.0.1:$p")
done
# A second Cluster, three masters with a replica each, for the tests that
# kill a master; the shared Cluster above stays whole for everyone else.
fcluster=()
for _ in 1 2 3 4 5 6; do
	free_port
	p=$PORT
	start_conf_redis "$p" "cluster-enabled yes" "cluster-config-file $tmp/redis-$p/nodes.conf" \
		"cluster-node-timeout 2000"
	fcluster+=("127.0.0.1:$p")
done
redis-cli --cluster create "${fcluster[@]}" --cluster-replicas 1 --cluster-yes >"$tmp/fcluster-create.log" 2>&1 ||
	{ cat "$tmp/fcluster-create.log" >&2; exit 1; }
for node in "${fcluster[@]}"; do
	wait_for 200 "cluster node $node never reached cluster_state:ok" \
		sh -c "redis-cli -p ${node#*:} cluster info | grep -q 'cluster_state:ok'"
done

wait_for 200 "the replica on $replica_port never synced" \
	sh -c "redis-cli -p $replica_port info replication | grep -q 'master_link_status:up'"
# Ready when every Sentinel knows the replica and the two other Sentinels
# (they find each other through hello messages, every 2s).
for s in "${sentinels[@]}"; do
	wait_for 200 "sentinel $s never saw the replica and the other sentinels" sh -c "
		redis-cli -p ${s#*:} sentinel replicas $sentinel_master | grep -q '^127.0.0.1:$replica_port\$\|^$replica_port\$' &&
		[ \$(redis-cli -p ${s#*:} sentinel master $sentinel_master | grep -A1 '^num-other-sentinels\$' | tail -1) = 2 ]"
done

memcached_addrs=()
for _ in 1 2; do
	free_port
	p=$PORT
	memcached -l 127.0.0.1 -p "$p" -U 0 -m 64 -u "$(id -un)" &
	pids+=($!)
	memcached_addrs+=("127.0.0.1:$p")
done
for a in "${memcached_addrs[@]}"; do
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/${a#*:}") 2>/dev/null && break
		[ "$i" = 100 ] && { log "memcached on $a did not start"; exit 1; }
		sleep 0.05
	done
done

export HTTPSESSION_REDIS_ADDR="127.0.0.1:$redis_port"
export HTTPSESSION_REDIS_CLUSTER_ADDRS
HTTPSESSION_REDIS_CLUSTER_ADDRS=$(IFS=,; echo "${cluster[*]}")
export HTTPSESSION_MEMCACHED_ADDRS
HTTPSESSION_MEMCACHED_ADDRS=$(IFS=,; echo "${memcached_addrs[*]}")
export HTTPSESSION_REDIS_SENTINEL_ADDRS HTTPSESSION_REDIS_SENTINEL_MASTER=$sentinel_master
HTTPSESSION_REDIS_SENTINEL_ADDRS=$(IFS=,; echo "${sentinels[*]}")
export HTTPSESSION_REDIS_FAILOVER_CLUSTER_ADDRS
HTTPSESSION_REDIS_FAILOVER_CLUSTER_ADDRS=$(IFS=,; echo "${fcluster[*]}")
log "redis $HTTPSESSION_REDIS_ADDR; cluster $HTTPSESSION_REDIS_CLUSTER_ADDRS; memcached $HTTPSESSION_MEMCACHED_ADDRS"
log "sentinels $HTTPSESSION_REDIS_SENTINEL_ADDRS ($sentinel_master: primary 127.0.0.1:$primary_port, replica 127.0.0.1:$replica_port)"
log "failover cluster $HTTPSESSION_REDIS_FAILOVER_CLUSTER_ADDRS"

# ---------------------------------------------------------------------------
# SQL: PostgreSQL 15 and MariaDB for the sqltest module (SQLBackend). Each
# server gets its own data directory under $tmp, owned by an unprivileged
# user (PostgreSQL refuses to run as root: as root, the servers run as
# nobody through setpriv, which execs them, so their PIDs are the servers'
# own), and a free loopback port. Exported: HTTPSESSION_POSTGRES_DSN,
# HTTPSESSION_MYSQL_DSN, and for the fault tests, which start servers of
# their own, HTTPSESSION_POSTGRES_BIN (the directory of initdb and
# postgres) and HTTPSESSION_DB_USER (the user to run them as when root).
need postgresql-15 /usr/lib/postgresql/15/bin/postgres
need mariadb-server mariadbd mariadb-install-db
need mariadb-client mariadb

pgbin=/usr/lib/postgresql/15/bin
db_user=$(id -un)
as_db=(env) # a command prefix, not a function: "${as_db[@]}" cmd & is cmd's own PID
if [ "$(id -u)" = 0 ]; then
	db_user=nobody
	as_db=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
chmod 711 "$tmp" # the unprivileged user reaches its own directories below

sqldir="$tmp/sql"
mkdir -p "$sqldir/pg" "$sqldir/mariadb"
[ "$(id -u)" = 0 ] && chown nobody:nogroup "$sqldir/pg" "$sqldir/mariadb"

free_port
pg_port=$PORT
"${as_db[@]}" "$pgbin/initdb" -D "$sqldir/pg/data" -A trust -U postgres -E UTF8 --no-sync >"$sqldir/initdb.log" 2>&1 ||
	{ cat "$sqldir/initdb.log" >&2; exit 1; }
"${as_db[@]}" "$pgbin/postgres" -D "$sqldir/pg/data" -p "$pg_port" -k "$sqldir/pg" -c listen_addresses=127.0.0.1 \
	-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
	>"$sqldir/pg/postgres.log" 2>&1 &
pids+=($!)
for i in $(seq 200); do
	"$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
	[ "$i" = 200 ] && { tail -20 "$sqldir/pg/postgres.log" >&2; log "postgres did not start"; exit 1; }
	sleep 0.05
done

free_port
my_port=$PORT
"${as_db[@]}" mariadb-install-db --no-defaults --datadir="$sqldir/mariadb/data" --skip-test-db \
	--auth-root-authentication-method=normal >"$sqldir/mariadb-install.log" 2>&1 ||
	{ cat "$sqldir/mariadb-install.log" >&2; exit 1; }
"${as_db[@]}" mariadbd --no-defaults --datadir="$sqldir/mariadb/data" --socket="$sqldir/mariadb/sock" \
	--pid-file="$sqldir/mariadb/pid" --port="$my_port" --bind-address=127.0.0.1 --skip-grant-tables \
	--skip-log-bin --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=64M --max-connections=200 \
	--log-error="$sqldir/mariadb/error.log" 2>"$sqldir/mariadb/stderr.log" &
pids+=($!)
for i in $(seq 300); do
	mariadb -h 127.0.0.1 -P "$my_port" -u root -e 'CREATE DATABASE IF NOT EXISTS httpsession' 2>/dev/null && break
	[ "$i" = 300 ] && { tail -20 "$sqldir/mariadb/error.log" >&2; log "mariadb did not start"; exit 1; }
	sleep 0.05
done

export HTTPSESSION_POSTGRES_DSN="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
export HTTPSESSION_MYSQL_DSN="root@tcp(127.0.0.1:$my_port)/httpsession"
export HTTPSESSION_POSTGRES_BIN=$pgbin HTTPSESSION_DB_USER=$db_user
log "postgres $HTTPSESSION_POSTGRES_DSN; mariadb $HTTPSESSION_MYSQL_DSN"
# End of the SQL block.
# ---------------------------------------------------------------------------

"$@"
