package check

// ConfigTemplate is what `relcheck init` writes: every key with its default and a
// comment saying what it does. Parsing it yields DefaultConfig().
const ConfigTemplate = `# relcheck.yaml — settings of relcheck's release gates.
# Every key is optional; the values below are the defaults.
# Durations use Go syntax plus d for days (30d, 1h30m).

api:
  # Package patterns that form the public API (internal/, main packages,
  # testdata and nested modules are never part of it).
  packages: ["./..."]
  # Optional API report file, one line per exported feature, like Go's
  # api/*.txt. When set, every API change must be declared in it:
  # run "relcheck api update" and commit the result.
  # report: api/relcheck.txt
  deprecation:
    # Releases in which a deprecated identifier must still exist before it
    # may be removed (counted from the first release tag that marked it
    # "// Deprecated:"); 0 to 1000.
    minReleases: 1
    # And days since that first release (0 to 36500).
    minDays: 0
  # Package patterns exempt from the gate: reported, never failing.
  experimental: []
  # Suppressions: a reason is required; "until" (a version or a date) makes
  # the suppression expire, and an expired one is itself an error.
  ignore: []
  #  - {rule: api/incompatible, symbol: example.com/lib.Old, reason: "...", until: v1.6.0}
  # Run the base release's external tests (package x_test) and Examples
  # against the head's packages: one that passed there and fails now is
  # api/behaviour-changed. Bounded per side by compatTimeout (1s to 2h).
  compatTests: false
  compatTimeout: 5m
  compatIgnore: []
  #  - {test: example.com/lib.TestParse, reason: "..."}
  # OpenAPI 3.x (or Swagger 2.0) documents of the HTTP API, relative to the
  # module: compared with oasdiff under the same policies, in the same
  # verdict and report file.
  openapi: []

migrations:
  # golang-migrate files NNN_name.up.sql / NNN_name.down.sql.
  dir: migrations
  # postgres or sqlite.
  dialect: postgres
  # Empty: relcheck starts a throwaway database itself.
  databaseURL: ""
  # "table" or "table.column" the application no longer uses; a drop is
  # allowed only for objects listed here at the base release.
  deprecated: []
  # Production row counts per table, to extrapolate lock times. A table
  # declared at 10000 rows or more is busy: a lock that blocks it, taken
  # without a lock_timeout, is an error there (a warning elsewhere).
  sizes: {}
  # Share of the remaining error budget one release may spend (above 0,
  # at most 1).
  budgetShare: 0.1
  # Row counts the touched tables are seeded with to measure how long
  # the new migrations block the application (a concurrent probe); the
  # measurements are extrapolated to sizes (each 1 to 100000000; sizes:
  # 0 to 10^12). [] turns this off.
  probeSizes: [10000, 100000, 1000000]
  # Larger sizes are skipped once the extrapolation is at least twice over
  # or under the budget; true measures them all, and reports how well the
  # smaller sizes predicted the largest.
  measureEverySize: false
  # false for projects that write no down migrations: no down file is
  # required and up → down → up is not checked.
  reversible: true
  # Accepted findings: {rule, file, reason, until}; file is a path like
  # migrations/0140_backfill.up.sql, a base name or a glob; until is a
  # version or a date, after which the finding counts again.
  ignore: []

slo:
  # Availability objective in percent (between 0 and 100).
  objective: 99.9
  # Up to 3660d.
  window: 30d
  # Fraction of this window's error budget still unspent (0 to 1).
  budgetRemaining: 1.0

perf:
  benchmarks:
    packages: ["./..."]
    pattern: "."
    # interleaved: base and head one after the other (base, head, head,
    # base, ...); duet: at the same time, one per CPU, each round's ratio
    # judged (needs 2 CPUs; see the README for when it sees more).
    mode: interleaved
    # Rounds per side; more rounds see smaller changes (6 to 1000).
    rounds: 10
    # A slowdown counts when it is significant (one-sided p below alpha)
    # and above threshold (0% to 1000%), and fresh rounds confirm it;
    # alpha is above 0 and below 0.5.
    threshold: 5%
    alpha: 0.01
    # -test.benchtime of each run.
    benchtime: 100ms
  # Load scenarios: the program built at base and head, started afresh
  # each round and driven at a fixed rate, e.g.
  #   - name: api
  #     build: ./cmd/server
  #     args: ["-addr", "{addr}"]
  #     ready: /healthz
  #     targets: [{method: GET, path: /items}]
  #     rate: 200
  #     duration: 5s
  #     warmup: 1s
  #     rounds: 6
  #     slo: ["p99 < 50ms", "errors < 0.1%"]
  #     threshold: 10%
  scenarios: []

channels:
  # OCI reference (ghcr.io/org/app) or a local layout (oci:./dist/oci).
  repo: ""
  key: cosign.key
`
