package migrations

import (
	"context"
	"fmt"
)

// OpenEngine opens the engine for a dialect: SQLite in-process, or
// PostgreSQL (databaseURL if given, else a throwaway cluster from the local
// PostgreSQL binaries).
func OpenEngine(ctx context.Context, dialect, databaseURL string) (Engine, error) {
	switch dialect {
	case "sqlite":
		return NewSQLite()
	case "postgres":
		return NewPostgres(ctx, databaseURL)
	}
	return nil, fmt.Errorf("unknown dialect %q", dialect)
}
