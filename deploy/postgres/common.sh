# Shared by deploy/postgres/start and stop (sourced): where the server lives and how to run
# its binaries. Sets home, bindir, as_pg.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# The server refuses to run as root; run it as the postgres system user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# As root the server runs as postgres, which must reach its data directory. A checkout under
# a private directory (/root is 0700) is out of its reach, so the data then lives under
# /var/tmp, named after the checkout so that start and stop agree.
if [ -n "${PG_HOME:-}" ]; then
  home=$PG_HOME
else
  home=$repo/.cache/postgres
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$repo" 2>/dev/null; then
    home=/var/tmp/capmon-postgres-$(printf '%s' "$repo" | sha256sum | cut -c1-12)
  fi
fi
