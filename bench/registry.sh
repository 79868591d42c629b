# registry.sh — sourced by compare-publish.sh and compare-upgrade.sh: finding
# the pinned tools, and a throwaway distribution registry on 127.0.0.1.
# The caller sets TOOLS, WORK, REGISTRY (the docker-registry binary), CRANE
# and REG_PID= (its cleanup kills $REG_PID), and defines die.

# find_tool NAME: NAME on PATH, else in $TOOLS; empty when missing.
find_tool() { command -v "$1" 2>/dev/null || { [ -x "$TOOLS/$1" ] && echo "$TOOLS/$1"; } || true; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_registry PORT ACCESSLOG: start docker-registry on PORT with storage
# in $WORK/registry (ACCESSLOG true logs every request); 1 when it does
# not come up within 10 s.
start_registry() {
	local port=$1 access=$2 dir=$WORK/registry
	mkdir -p "$dir/storage"
	cat >"$dir/config.yml" <<-EOF
	version: 0.1
	log:
	  level: warn
	  accesslog:
	    disabled: $([ "$access" = true ] && echo false || echo true)
	storage:
	  filesystem:
	    rootdirectory: "$dir/storage"
	  delete:
	    enabled: true
	  maintenance:
	    uploadpurging:
	      enabled: false
	http:
	  addr: "127.0.0.1:$port"
	  secret: relcheck-compare
	EOF
	# REGISTRY_* variables would override the configuration file.
	env $(env | sed -n 's/^\(REGISTRY_[^=]*\)=.*/-u \1/p') "$REGISTRY" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	REG_PID=$!
	for _ in $(seq 1 100); do # 10 s
		if ! kill -0 "$REG_PID" 2>/dev/null; then
			wait "$REG_PID" 2>/dev/null || true
			REG_PID=
			return 1
		fi
		timeout 2 "$CRANE" catalog "127.0.0.1:$port" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	kill "$REG_PID" 2>/dev/null || true
	wait "$REG_PID" 2>/dev/null || true
	REG_PID=
	return 1
}

# registry_up ACCESSLOG: start the registry on a free random port (bind-test
# one, retry when another process took it first); sets PORT and REG.
registry_up() {
	PORT=
	local p
	for _ in 1 2 3 4 5; do
		p=$((20000 + RANDOM % 40000))
		port_free "$p" || continue
		if start_registry "$p" "$1"; then PORT=$p; break; fi
	done
	[ -n "$PORT" ] || die "could not start docker-registry: $(tail -n 5 "$WORK/registry/registry.log" 2>/dev/null)"
	REG=127.0.0.1:$PORT
}
