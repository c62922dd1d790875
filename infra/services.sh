#!/usr/bin/env bash
# infra/services.sh start|stop|status [postgres|redis|rabbitmq|nginx ...]
#
# The servers the lab runs against, on loopback at their standard ports:
# PostgreSQL 5432, Redis 6379, RabbitMQ 5672, NGINX 80.
#
#   start   Leaves alone what already answers, starts what is installed but
#           stopped, and installs the Debian package (as root, one apt-get
#           update per run) where it is missing; also wrk and redis-tools,
#           the load generators. Then creates the databases lab and lab_test
#           and the roles lab_owner and lab_app (infra/postgres/*.sql), and
#           checks that both roles can log in with a password over 127.0.0.1.
#   stop    Stops them: NGINX only if this script started it (its pid file).
#   status  One line per server; exit 0 only if every one answers.
#
# With no server named, all four. Safe to run again and again, and from two
# shells at once (a lock serializes runs). No systemd is needed: each server
# is started by its own daemon command, as in a container or a CI machine.
# Runtime files (pid files, logs, NGINX temp dirs) go under .run/ in the
# repository, which git ignores. Role names and passwords come from the
# URLs in the environment, else .env, else .env.example (as in lab/settings.py).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN="$ROOT/.run"
HOST=127.0.0.1
ALL=(postgres redis rabbitmq nginx)
declare -A PORT=([postgres]=5432 [redis]=6379 [rabbitmq]=5672 [nginx]=80)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"  # nginx, rabbitmq-server: sbin, not on a user's PATH

say() { printf '%s\n' "$*"; }
die() { printf '%s\n' "$*" >&2; exit 1; }

answers() {  # answers PORT: does something accept a TCP connection on HOST:PORT?
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

wait_for() {  # wait_for NAME SECONDS WHERE-TO-LOOK: poll NAME's port until it answers
    local deadline=$((SECONDS + $2))
    until answers "${PORT[$1]}"; do
        ((SECONDS < deadline)) || die "$1: did not answer on $HOST:${PORT[$1]} within $2 s; see $3"
        sleep 0.5
    done
    say "$1: answering on $HOST:${PORT[$1]}"
}

# ---------------------------------------------------------------- packages --

missing_packages() {  # the Debian packages that the named servers and the load tests need
    local name
    for name in "$@"; do
        case $name in
            postgres)
                if ! answers 5432 && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
                    echo postgresql
                elif ! command -v psql >/dev/null; then
                    echo postgresql-client  # the roles are created with psql
                fi ;;
            redis)
                if ! answers 6379 && ! command -v redis-server >/dev/null; then
                    echo redis-server   # depends on redis-tools
                elif ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
                    echo redis-tools
                fi ;;
            rabbitmq)
                if ! answers 5672 && ! command -v rabbitmq-server >/dev/null; then
                    echo rabbitmq-server
                fi ;;
            nginx)
                # The binary, even if something else answers on 80: challenge 4 runs its own NGINX.
                command -v nginx >/dev/null || echo nginx-light ;;
        esac
    done
    command -v wrk >/dev/null || echo wrk  # the HTTP load generator of the benchmarks
}

POLICY_RC=/usr/sbin/policy-rc.d

install_packages() {  # install_packages PACKAGE...: apt-get, as root, with services kept stopped
    local log="$RUN/apt.log" own_policy=no
    [[ $EUID -eq 0 ]] || die "apt: missing $*; run as root (sudo $0 start), or: apt-get install $*"
    command -v apt-get >/dev/null || die "apt: missing $*, and apt-get is not here (Debian only)"
    say "apt: apt-get update"
    apt-get update -q >"$log" 2>&1 || die "apt: apt-get update failed; see $log"
    if [[ " $* " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        set -- "${@/#nginx-light/nginx}"  # a release without nginx-light: the plain package
    fi
    # A package's post-install script starts its service through invoke-rc.d,
    # listening on every interface (NGINX on 0.0.0.0:80) and with settings
    # that are not ours. A policy-rc.d that exits 101 forbids that (see
    # invoke-rc.d(8)); this script then starts each server itself. One that
    # exists already (Docker images ship one) is left as it is.
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
        own_policy=yes
        trap 'rm -f "$POLICY_RC"' EXIT  # removed even if apt-get fails and die exits
    fi
    say "apt: installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >>"$log" 2>&1 </dev/null || die "apt: apt-get install $* failed; see $log"
    if [[ $own_policy == yes ]]; then
        rm -f "$POLICY_RC"
        trap - EXIT
    fi
}

# ---------------------------------------------------------------- postgres --

pg_cluster() {  # "VERSION NAME STATUS" of the cluster configured for port 5432, if any
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters --no-header | awk '$3 == 5432 { print $1, $2, $4; exit }'
}

start_postgres() {
    if answers 5432; then say "postgres: already answering on $HOST:5432"; return; fi
    local version='' name='' status='' log="$RUN/postgres.log"
    command -v pg_ctlcluster >/dev/null ||
        die "postgres: installed without Debian's postgresql-common (pg_ctlcluster); start it yourself"
    read -r version name status < <(pg_cluster) || true
    if [[ -z $version ]]; then
        # The postgresql package creates <version>/main; if that was dropped, make a new one.
        [[ -z $(pg_lsclusters --no-header) ]] ||
            die "postgres: no cluster is configured for port 5432 (see pg_lsclusters)"
        version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
        name=main
        say "postgres: creating cluster $version/$name on port 5432"
        pg_createcluster --port 5432 "$version" "$name" >"$log" 2>&1 ||
            die "postgres: pg_createcluster $version $name failed; see $log"
    fi
    [[ $status != online* ]] ||
        die "postgres: cluster $version/$name runs but does not answer on $HOST:5432 (check listen_addresses)"
    say "postgres: starting cluster $version/$name…"
    # --skip-systemctl-redirect: run pg_ctl directly; without it pg_ctlcluster hands over to systemd.
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >>"$log" 2>&1 </dev/null ||
        die "postgres: could not start cluster $version/$name; see $log and /var/log/postgresql/"
    wait_for postgres 30 "/var/log/postgresql/postgresql-$version-$name.log"
}

stop_postgres() {
    local version='' name='' status=''
    read -r version name status < <(pg_cluster) || true
    if [[ $status != online* ]]; then
        answers 5432 && die "postgres: answering on $HOST:5432, but not a local cluster this script can stop"
        say "postgres: not running"
        return
    fi
    say "postgres: stopping cluster $version/$name"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" stop </dev/null ||
        die "postgres: pg_ctlcluster $version $name stop failed"
}

setting() {  # setting NAME: its value from the environment, else .env, else .env.example
    local name=$1 file line value
    if [[ -n ${!name:-} ]]; then printf '%s' "${!name}"; return; fi
    for file in "$ROOT/.env" "$ROOT/.env.example"; do
        [[ -f $file ]] || continue
        # The last KEY= line wins, as in lab/settings.py; leading "export" is allowed.
        line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?${name}[[:space:]]*=" "$file" | tail -n 1) || continue
        value=${line#*=}
        value=${value#"${value%%[![:space:]]*}"}  # trim leading blanks
        value=${value%"${value##*[![:space:]]}"}  # trim trailing blanks
        if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
        printf '%s' "$value"
        return
    done
    die "postgres: $name is not set (environment, .env or .env.example)"
}

urldecode() { printf '%b' "${1//%/\\x}"; }  # %40 -> @: the escapes a URL password may need

pg_url() {  # pg_url NAME: split the URL in setting NAME into URL_USER, URL_PASSWORD, URL_DB
    local re='^postgres(ql)?://([^:@/]+):([^@/]*)@[^/]+/([^/?]+)'
    [[ $(setting "$1") =~ $re ]] ||
        die "postgres: $1 must look like postgresql://USER:PASSWORD@127.0.0.1:5432/DB"
    URL_USER=$(urldecode "${BASH_REMATCH[2]}")
    URL_PASSWORD=$(urldecode "${BASH_REMATCH[3]}")
    URL_DB=$(urldecode "${BASH_REMATCH[4]}")
}

psql_super() {  # psql as the postgres superuser, over the local socket
    local -a psql=(psql -X -q -v ON_ERROR_STOP=1 -p 5432)
    # cd /: the postgres user may not be allowed into this directory.
    # env -u PGHOST: a PGHOST pointing at 127.0.0.1 would turn this into a password login.
    if [[ $EUID -eq 0 ]]; then
        (cd / && env -u PGHOST -u PGHOSTADDR runuser -u postgres -- "${psql[@]}" "$@")
    else
        (cd / && env -u PGHOST -u PGHOSTADDR "${psql[@]}" -U postgres "$@")
    fi
}

setup_databases() {
    local owner owner_pw app app_pw db test_db name
    pg_url DATABASE_OWNER_URL; owner=$URL_USER owner_pw=$URL_PASSWORD db=$URL_DB
    pg_url DATABASE_URL; app=$URL_USER app_pw=$URL_PASSWORD
    [[ $URL_DB == "$db" ]] || die "postgres: DATABASE_URL and DATABASE_OWNER_URL name different databases"
    pg_url TEST_DATABASE_OWNER_URL; test_db=$URL_DB
    [[ $URL_USER:$URL_PASSWORD == "$owner:$owner_pw" ]] ||
        die "postgres: TEST_DATABASE_OWNER_URL must use the user and password of DATABASE_OWNER_URL"
    pg_url TEST_DATABASE_URL
    [[ $URL_USER:$URL_PASSWORD == "$app:$app_pw" && $URL_DB == "$test_db" ]] ||
        die "postgres: TEST_DATABASE_URL must use the user and password of DATABASE_URL, on $test_db"

    say "postgres: roles $owner and $app, databases $db and $test_db"
    psql_super -d postgres -v owner="$owner" -v owner_password="$owner_pw" -v app="$app" \
        -v app_password="$app_pw" -v db="$db" -v test_db="$test_db" \
        <"$ROOT/infra/postgres/roles.sql" >/dev/null ||
        die "postgres: creating the roles and databases failed (as root, or with trust for postgres on the socket?)"
    for name in "$db" "$test_db"; do
        psql_super -d "$name" -v owner="$owner" -v app="$app" \
            <"$ROOT/infra/postgres/grants.sql" >/dev/null ||
            die "postgres: granting privileges in $name failed"
    done

    # The lab logs in over TCP with a password; pg_hba.conf decides whether that works.
    check_login "$owner" "$owner_pw" "$test_db"
    check_login "$app" "$app_pw" "$test_db"
    say "postgres: $owner and $app log in with their passwords on $HOST:5432"
}

check_login() {  # check_login USER PASSWORD DB
    local err
    if ! err=$(PGPASSWORD=$2 PGCONNECT_TIMEOUT=5 psql -X -w -h "$HOST" -p 5432 -U "$1" -d "$3" \
            -tAc 'SELECT 1' 2>&1 >/dev/null); then
        die "postgres: $1 cannot log in with a password on $HOST:5432 (${err%%$'\n'*}); the host lines" \
            "of $(psql_super -tAc 'SHOW hba_file') must say scram-sha-256, md5 or trust, not ident"
    fi
}

# ------------------------------------------------------------------- redis --

start_redis() {
    if answers 6379; then say "redis: already answering on $HOST:6379"; return; fi
    say "redis: starting…"
    mkdir -p "$RUN/redis"
    # The settings after the file override it: runtime files under .run/redis/.
    redis-server "$ROOT/infra/redis/redis.conf" --dir "$RUN/redis" \
        --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" \
        </dev/null >"$RUN/redis/start.log" 2>&1 ||
        die "redis: redis-server failed; see $RUN/redis/start.log and $RUN/redis/redis.log"
    wait_for redis 15 "$RUN/redis/redis.log"
}

stop_redis() {
    if ! answers 6379; then say "redis: not running"; return; fi
    say "redis: stopping"
    redis-cli -h "$HOST" -p 6379 shutdown nosave >/dev/null || die "redis: redis-cli shutdown failed"
}

# ---------------------------------------------------------------- rabbitmq --

rabbitmq_env() {  # export the loopback-only environment of infra/rabbitmq/rabbitmq-env.sh
    set -a
    # shellcheck source=rabbitmq/rabbitmq-env.sh
    . "$ROOT/infra/rabbitmq/rabbitmq-env.sh"
    set +a
    # A node name that needs no DNS lookup of this host's name, unless the
    # machine's rabbitmq-env.conf names the node (then rabbitmqctl must use that one).
    if [[ -z ${RABBITMQ_NODENAME:-} ]] && ! grep -qs '^[[:space:]]*NODENAME=' /etc/rabbitmq/rabbitmq-env.conf; then
        export RABBITMQ_NODENAME=rabbit@localhost
    fi
}

start_rabbitmq() {
    if answers 5672; then say "rabbitmq: already answering on $HOST:5672"; return; fi
    say "rabbitmq: starting (this takes a few seconds)…"
    rabbitmq_env
    # Run as root, the Debian wrapper switches to the rabbitmq user itself;
    # -detached returns at once, so wait_for polls the AMQP port, which opens last.
    rabbitmq-server -detached </dev/null >"$RUN/rabbitmq.log" 2>&1 ||
        die "rabbitmq: rabbitmq-server -detached failed; see $RUN/rabbitmq.log"
    wait_for rabbitmq 90 "/var/log/rabbitmq/ and $RUN/rabbitmq.log"
}

stop_rabbitmq() {
    if ! answers 5672; then say "rabbitmq: not running"; return; fi
    say "rabbitmq: stopping"
    rabbitmq_env
    rabbitmqctl stop </dev/null >"$RUN/rabbitmq.log" 2>&1 ||
        die "rabbitmq: rabbitmqctl stop failed; see $RUN/rabbitmq.log"
}

# ------------------------------------------------------------------- nginx --

NGINX_PID="$RUN/nginx/nginx.pid"
nginx_run() {  # nginx with our prefix and config; the error log is set before the config is read
    nginx -p "$ROOT/" -e "$RUN/nginx/error.log" -c "$ROOT/infra/nginx/nginx.conf" "$@"
}

alive() {  # the process runs and is no zombie: where pid 1 never reaps, kill -0 cannot tell
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

our_nginx() {  # prints the master's pid if the NGINX this script started still runs
    local pid
    [[ -s $NGINX_PID ]] || return 1
    pid=$(<"$NGINX_PID")
    alive "$pid" && echo "$pid"
}

start_nginx() {
    local pid
    if answers 80; then
        if pid=$(our_nginx); then
            say "nginx: already answering on $HOST:80 (ours, pid $pid)"
        else
            say "nginx: already answering on $HOST:80 (not started by this script; left alone)"
        fi
        return
    fi
    say "nginx: starting…"
    mkdir -p "$RUN/nginx"
    nginx_run -t -q </dev/null >"$RUN/nginx/start.log" 2>&1 ||
        die "nginx: infra/nginx/nginx.conf fails nginx -t; see $RUN/nginx/start.log"
    nginx_run </dev/null >>"$RUN/nginx/start.log" 2>&1 ||
        die "nginx: could not start (port 80 needs root); see $RUN/nginx/start.log"
    wait_for nginx 10 "$RUN/nginx/error.log"
}

stop_nginx() {
    local pid
    if ! pid=$(our_nginx); then
        if answers 80; then say "nginx: the server on $HOST:80 was not started by this script; left alone"
        else say "nginx: not running"; fi
        return
    fi
    say "nginx: stopping (pid $pid)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 10))
    while alive "$pid"; do
        ((SECONDS < deadline)) || die "nginx: pid $pid still running 10 s after SIGTERM"
        sleep 0.2
    done
}

# -------------------------------------------------------------------- main --

status() {
    local name failed=0
    for name in "$@"; do
        if answers "${PORT[$name]}"; then
            say "$name: answering on $HOST:${PORT[$name]}"
        else
            say "$name: not answering on $HOST:${PORT[$name]}"
            failed=1
        fi
    done
    return "$failed"
}

main() {
    local command=${1:-} name
    local -a names missing
    if (($#)); then shift; fi
    names=("$@")
    ((${#names[@]})) || names=("${ALL[@]}")
    for name in "${names[@]}"; do
        [[ -n ${PORT[$name]:-} ]] || die "services.sh: unknown server '$name' (postgres, redis, rabbitmq, nginx)"
    done
    case $command in
        status)
            status "${names[@]}" ;;
        start)
            mapfile -t missing < <(missing_packages "${names[@]}")
            ((${#missing[@]} == 0)) || install_packages "${missing[@]}"
            for name in "${names[@]}"; do "start_$name"; done
            [[ " ${names[*]} " != *" postgres "* ]] || setup_databases ;;
        stop)
            for name in "${names[@]}"; do "stop_$name"; done ;;
        *)
            printf 'usage: infra/services.sh start|stop|status [postgres|redis|rabbitmq|nginx ...]\n' >&2
            exit 2 ;;
    esac
}

mkdir -p "$RUN"
# start and stop hold a lock, so two runs at once (two make targets) do not
# race to start the same server. The script re-runs itself under flock -o,
# which keeps the lock's descriptor out of this script and so out of the
# daemons it starts: a daemon holding it would block every later run.
case ${1:-}:${SERVICES_SH_LOCKED:-} in
    start: | stop:) SERVICES_SH_LOCKED=1 exec flock -o "$RUN/services.lock" bash "${BASH_SOURCE[0]}" "$@" ;;
esac
main "$@"
