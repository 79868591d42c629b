package migrations

import (
	"context"
	"testing"
)

// TestSeedForeignKeys seeds tables with references on every engine: the
// referenced table is seeded first, NOT NULL references point at its rows,
// nullable ones stay NULL, and the probe's update finds existing rows.
func TestSeedForeignKeys(t *testing.T) {
	ctx := context.Background()
	for name, eng := range engines(t) {
		t.Run(name, func(t *testing.T) {
			dbi, err := eng.NewDB(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer dbi.Close()
			db := dbi.(loadDB)
			stmts := []string{
				"CREATE TABLE accounts (id integer PRIMARY KEY, name text NOT NULL)",
				"CREATE TABLE users (id integer PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id), email text NOT NULL UNIQUE, born date, score real, flag boolean)",
				"CREATE TABLE orders (id integer PRIMARY KEY, user_id integer REFERENCES users (id), total numeric(12, 2))",
			}
			if name == "sqlite" {
				db.SQL().SetMaxOpenConns(1) // the pragma is per connection
				stmts = append([]string{"PRAGMA foreign_keys = ON"}, stmts...)
			}
			for _, q := range stmts {
				if _, err := db.SQL().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			schema, err := db.Schema(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s := newSeeder(db.dialect(), schema)
			for _, tb := range []string{"orders", "users"} {
				if err := s.seed(ctx, db.SQL(), tb, 50); err != nil {
					t.Fatal(err)
				}
			}
			count := func(q string) (n int) {
				if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return n
			}
			if n := count("SELECT count(*) FROM accounts"); n != 50 {
				t.Errorf("accounts: %d rows, want 50 (seeded before users)", n)
			}
			if n := count("SELECT count(*) FROM users"); n != 50 {
				t.Errorf("users: %d rows", n)
			}
			if n := count("SELECT count(*) FROM orders WHERE user_id IS NULL"); n != 50 {
				t.Errorf("orders: %d rows with a NULL reference, want 50", n)
			}
			up := s.updateSQL(schema.Tables["users"], 7)
			if up == "" {
				t.Fatal("no update for users")
			}
			res, err := db.SQL().ExecContext(ctx, up)
			if err != nil {
				t.Fatalf("%s: %v", up, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Errorf("%s updated %d rows, want 1", up, n)
			}
			if problems, err := seedAll(ctx, dbi, schema, 3, nil); err != nil || len(problems) > 0 {
				t.Fatal(err, problems)
			}
		})
	}
}
