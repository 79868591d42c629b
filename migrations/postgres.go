package migrations

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"

	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres replays on PostgreSQL: on a server given by URL (relcheck creates
// and drops its own databases there, never touching others), or on a
// throwaway cluster it starts from the local initdb/postgres binaries on
// 127.0.0.1 and a random port, and removes afterwards.
type Postgres struct {
	admin *sql.DB // to the maintenance database
	url   *url.URL
	n     int

	cmd  *exec.Cmd // the throwaway server, if relcheck started one
	dir  string
	done chan error
}

// PostgresUnavailableError says that no PostgreSQL could be had.
type PostgresUnavailableError struct{ Why string }

func (e *PostgresUnavailableError) Error() string {
	return "no PostgreSQL to replay the migrations on: " + e.Why +
		"; install PostgreSQL (apt-get install postgresql), set migrations.databaseURL, or use dialect sqlite"
}

// DatabaseURLError is a database URL that is not a PostgreSQL connection
// URL (exit 2: the user has to fix it).
type DatabaseURLError struct{ URL string }

func (e *DatabaseURLError) Error() string {
	return fmt.Sprintf("database URL %q is not a PostgreSQL URL: write it like postgres://user:password@127.0.0.1:5432/dbname?sslmode=disable (relcheck creates and drops its own databases there), or leave it empty for a throwaway cluster", e.URL)
}

// FindPostgresBin returns the directory holding initdb and postgres: on
// PATH, or the newest /usr/lib/postgresql/*/bin.
func FindPostgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", &PostgresUnavailableError{Why: "initdb and postgres are neither on PATH nor under /usr/lib/postgresql/*/bin"}
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// NewPostgres connects to databaseURL, or starts a throwaway cluster.
func NewPostgres(ctx context.Context, databaseURL string) (*Postgres, error) {
	if databaseURL != "" {
		u, err := url.Parse(databaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
			return nil, &DatabaseURLError{URL: databaseURL}
		}
		p := &Postgres{url: u}
		if p.admin, err = sql.Open("pgx", u.String()); err != nil {
			return nil, err
		}
		if err := p.admin.PingContext(ctx); err != nil {
			return nil, &PostgresUnavailableError{Why: fmt.Sprintf("cannot connect to migrations.databaseURL: %v", err)}
		}
		return p, nil
	}
	return startCluster(ctx)
}

func startCluster(ctx context.Context) (*Postgres, error) {
	bin, err := FindPostgresBin()
	if err != nil {
		return nil, err
	}
	// PostgreSQL refuses to run as root: run it as the postgres user then,
	// in a directory that user can reach.
	var cred *syscall.Credential
	parent := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, &PostgresUnavailableError{Why: "running as root, and there is no postgres user to run the server as"}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if !reachable(os.TempDir()) {
			parent = "/tmp"
		}
	}
	dir, err := os.MkdirTemp(parent, "relcheck-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir}
	fail := func(err error) (*Postgres, error) {
		p.Close()
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, lastLines(out, 5)))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	// Not bound to ctx: Close stops it, also after Ctrl-C.
	p.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return fail(err)
	}
	if cred != nil {
		os.Chown(logFile.Name(), int(cred.Uid), int(cred.Gid))
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return fail(err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait(); logFile.Close() }()
	p.url = &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/postgres", RawQuery: "sslmode=disable"}
	if p.admin, err = sql.Open("pgx", p.url.String()); err != nil {
		return fail(err)
	}
	// Poll readiness with a deadline; never sleep blindly.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := p.admin.PingContext(pingCtx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case werr := <-p.done:
			p.done <- werr
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("postgres exited: %v: %s", werr, lastLines(log, 5)))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("postgres did not accept connections within 30s: %v", err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reachable reports whether every directory from / down to dir can be
// traversed by other users.
func reachable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *Postgres) Name() string { return "postgres" }

// Close stops a server relcheck started and removes its files.
func (p *Postgres) Close() error {
	if p.admin != nil {
		p.admin.Close()
	}
	if p.cmd != nil && p.cmd.Process != nil {
		// SIGINT is PostgreSQL's fast shutdown.
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p.dir != "" {
		return os.RemoveAll(p.dir)
	}
	return nil
}

func (p *Postgres) NewDB(ctx context.Context) (DB, error) {
	name := "relcheck_" + randomSuffix()
	if _, err := p.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("creating a temporary database: %w", err)
	}
	db, err := p.open(name)
	if err != nil {
		return nil, err
	}
	return db, nil
}

// open connects to the database name of this server.
func (p *Postgres) open(name string) (*pgDB, error) {
	u := *p.url
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	return &pgDB{p: p, name: name, url: u.String(), db: db}, nil
}

// randomSuffix is 12 random hexadecimal digits, for names of throwaway
// databases.
func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type pgDB struct {
	p    *Postgres
	name string
	url  string
	db   *sql.DB
}

func (d *pgDB) SQL() *sql.DB { return d.db }

func (d *pgDB) Driver(ctx context.Context) (database.Driver, error) {
	db, err := sql.Open("pgx", d.url)
	if err != nil {
		return nil, err
	}
	return migratepgx.WithInstance(db, &migratepgx.Config{})
}

func (d *pgDB) Close() error {
	d.db.Close()
	_, err := d.p.admin.Exec("DROP DATABASE IF EXISTS " + d.name + " WITH (FORCE)")
	return err
}

func (d *pgDB) Schema(ctx context.Context) (*Schema, error) {
	s := newSchema()
	rows, err := d.db.QueryContext(ctx, `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), a.attgenerated <> '', a.attidentity::text,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END,
       coalesce((SELECT string_agg(e.enumlabel, chr(31) ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relname <> 'schema_migrations'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tn, cn, typ, def, identity, base, enum string
		var notnull, generated bool
		if err := rows.Scan(&tn, &cn, &typ, &notnull, &def, &generated, &identity, &base, &enum); err != nil {
			rows.Close()
			return nil, err
		}
		t := s.Tables[tn]
		if t == nil {
			t = &Table{Name: tn, Columns: map[string]*Column{}}
			s.Tables[tn] = t
		}
		c := &Column{Name: cn, Type: normType(typ), NotNull: notnull, Default: def, Generated: generated, Identity: identity, Base: normType(base)}
		if enum != "" {
			c.Enum = strings.Split(enum, "\x1f")
		}
		t.Columns[cn] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Unique keys, by the columns they name (expressions included).
	keys, err := d.db.QueryContext(ctx, `
SELECT t.relname, i.indexrelid::regclass::text,
       string_agg(a.attname, chr(31) ORDER BY a.attnum)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND NOT a.attisdropped
  AND (a.attnum = ANY (i.indkey) OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\m' || a.attname || '\M'))
WHERE i.indisunique AND n.nspname = 'public' AND t.relname <> 'schema_migrations'
GROUP BY t.relname, i.indexrelid
ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	for keys.Next() {
		var tn, name, cols string
		if err := keys.Scan(&tn, &name, &cols); err != nil {
			keys.Close()
			return nil, err
		}
		if t := s.Tables[tn]; t != nil {
			t.Unique = append(t.Unique, strings.Split(cols, "\x1f"))
		}
	}
	keys.Close()
	if err := keys.Err(); err != nil {
		return nil, err
	}
	if err := scanPairs(ctx, d.db, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`, s.Indexes); err != nil {
		return nil, err
	}
	if err := scanPairs(ctx, d.db, `SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'`, s.Views); err != nil {
		return nil, err
	}
	crow, err := d.db.QueryContext(ctx, `
SELECT con.conname, c.relname, con.contype, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname <> 'schema_migrations'`)
	if err != nil {
		return nil, err
	}
	defer crow.Close()
	kinds := map[string]string{"c": "check", "u": "unique", "f": "foreign key", "p": "primary key", "x": "exclusion"}
	for crow.Next() {
		var name, table, typ, def string
		if err := crow.Scan(&name, &table, &typ, &def); err != nil {
			return nil, err
		}
		s.Constraints[name] = Constraint{Table: table, Kind: kinds[typ], Def: def}
	}
	return s, crow.Err()
}

func scanPairs(ctx context.Context, db *sql.DB, q string, into map[string]string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		into[k] = strings.Join(strings.Fields(v), " ")
	}
	return rows.Err()
}

func (d *pgDB) dialect() string { return "postgres" }

// probeApp is the application_name of the probe's connections: the lock
// watcher leaves them out.
const probeApp = "relcheck-probe"

func (d *pgDB) probePool() (*sql.DB, error) {
	u, err := url.Parse(d.url)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("application_name", probeApp)
	u.RawQuery = q.Encode()
	return sql.Open("pgx", u.String())
}

// watchLocks polls pg_locks for the table locks granted to sessions other
// than the probe's and its own: the migration's. Row locks show in
// pg_locks as "tuple" locks on the table (an UPDATE waiting for a row holds
// one in ExclusiveLock mode): they are not table locks.
func (d *pgDB) waitQueued(ctx context.Context) error {
	for {
		var n int
		err := d.db.QueryRowContext(ctx, `
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND a.pid <> pg_backend_pid() AND a.application_name <> $1`, probeApp).Scan(&n)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (d *pgDB) watchLocks(ctx context.Context, tables []string, found func(string)) {
	for ctx.Err() == nil {
		rows, err := d.db.QueryContext(ctx, `
SELECT DISTINCT l.mode FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE c.relname = ANY($1) AND l.granted AND l.locktype = 'relation' AND a.pid <> pg_backend_pid()
  AND a.application_name <> $2`, tables, probeApp)
		if err == nil {
			for rows.Next() {
				var mode string
				if rows.Scan(&mode) == nil {
					found(mode)
				}
			}
			rows.Close()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quietRun runs a migration's statements in a rolled-back transaction,
// listing after each the table locks this backend holds and the relations
// whose storage (relfilenode) changed: a rewrite.
func (d *pgDB) quietRun(ctx context.Context, stmts []Stmt) (quietRun, error) {
	return runQuietly(ctx, d.db, stmts, catalogProbe{
		locks: func(ctx context.Context, conn *sql.Conn) ([]TableLock, error) {
			rows, err := conn.QueryContext(ctx, `
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p', 'm') AND n.nspname = 'public'
ORDER BY 1, 2`)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []TableLock
			for rows.Next() {
				var tl TableLock
				if err := rows.Scan(&tl.Table, &tl.Mode); err != nil {
					return nil, err
				}
				out = append(out, tl)
			}
			return out, rows.Err()
		},
		relations: relationsQuery(`
SELECT c.relname, c.relkind = 'i', c.relfilenode, coalesce(t.relname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'm')`),
	})
}

// abbreviate shortens s to one line of at most n characters.
func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// URL is the database's connection URL.
func (d *pgDB) URL() string { return d.url }

// URL is the connection URL of the server's maintenance database:
// another relcheck run can replay on the same server with it
// (migrations.databaseURL), creating and dropping its own databases.
func (p *Postgres) URL() string { return p.url.String() }
