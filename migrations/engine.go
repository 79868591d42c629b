package migrations

import (
	"context"
	"database/sql"

	"github.com/golang-migrate/migrate/v4/database"
)

// Engine is a kind of database the migrations can be replayed on. Each
// implementation (SQLite in-process, PostgreSQL) gives fresh, empty
// databases that are thrown away afterwards; the replay logic is shared.
type Engine interface {
	// Name is the dialect: "sqlite" or "postgres".
	Name() string
	// NewDB creates an empty database.
	NewDB(ctx context.Context) (DB, error)
	// Close releases the engine (stops a server it started).
	Close() error
}

// DB is one throwaway database.
type DB interface {
	// SQL is a connection pool to the database.
	SQL() *sql.DB
	// Driver returns a golang-migrate driver on a new connection; the
	// migrate instance using it may close it.
	Driver(ctx context.Context) (database.Driver, error)
	// Schema introspects the catalog (without golang-migrate's own table).
	Schema(ctx context.Context) (*Schema, error)
	// Close drops the database.
	Close() error
}
