package migrations

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// replayResult is what a replay of base then head on one database showed.
type replayResult struct {
	base, head *Schema
	// failed is the version whose up file did not apply, with the error.
	failed    uint
	failedErr error
	// reverse is set when down then up did not work or did not give back
	// the same schema: the version and what went wrong.
	reverseErr error
}

// newMigrate opens golang-migrate on db with the files of set up to max.
func newMigrate(ctx context.Context, db DB, set *Set, max uint) (*migrate.Migrate, error) {
	src, err := iofs.New(set.FS(max), ".")
	if err != nil {
		return nil, err
	}
	drv, err := db.Driver(ctx)
	if err != nil {
		return nil, err
	}
	return migrate.NewWithInstance("iofs", src, "relcheck", drv)
}

// replay applies the base set, seeds the tables, applies the head set
// exactly as golang-migrate does (a file is one transaction), and then
// checks that the new migrations go down and up again to the same schema.
func replay(ctx context.Context, eng Engine, base, head *Set, seedRows int) (*replayResult, error) {
	db, err := eng.NewDB(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	r := &replayResult{}
	baseMax := uint(0)
	if vs := base.Versions(); len(vs) > 0 {
		baseMax = vs[len(vs)-1]
		m, err := newMigrate(ctx, db, base, 0)
		if err != nil {
			return nil, err
		}
		if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return nil, fmt.Errorf("the base release's migrations do not apply on %s: %w", eng.Name(), err)
		}
	}
	if r.base, err = db.Schema(ctx); err != nil {
		return nil, err
	}
	if err := db.Seed(ctx, seedRows); err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	m, err := newMigrate(ctx, db, head, 0)
	if err != nil {
		return nil, err
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		v, _, verr := m.Version()
		if verr != nil {
			return nil, err
		}
		r.failed, r.failedErr = v, unwrapDBError(err)
		return r, nil
	}
	if r.head, err = db.Schema(ctx); err != nil {
		return nil, err
	}
	// Down to the base, then up again: the schema must be the same.
	var downErr error
	if baseMax > 0 {
		downErr = m.Migrate(baseMax)
	} else {
		downErr = m.Down()
	}
	if downErr != nil && !errors.Is(downErr, migrate.ErrNoChange) {
		r.reverseErr = fmt.Errorf("down to %s failed: %w", versionName(baseMax), unwrapDBError(downErr))
		return r, nil
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		r.reverseErr = fmt.Errorf("up again after down failed: %w", unwrapDBError(err))
		return r, nil
	}
	again, err := db.Schema(ctx)
	if err != nil {
		return nil, err
	}
	if same, diff := r.head.Equal(again); !same {
		r.reverseErr = fmt.Errorf("up → down → up does not give back the schema of up alone (%s)", diff)
	}
	return r, nil
}

func versionName(v uint) string {
	if v == 0 {
		return "an empty database"
	}
	return fmt.Sprintf("version %d", v)
}

// unwrapDBError keeps the database's own message from a golang-migrate error.
func unwrapDBError(err error) error {
	var de database.Error
	if errors.As(err, &de) && de.OrigErr != nil {
		return de.OrigErr
	}
	var dp *database.Error
	if errors.As(err, &dp) && dp.OrigErr != nil {
		return dp.OrigErr
	}
	return err
}
