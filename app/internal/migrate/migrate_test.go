package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/migrate"
	"github.com/fractionate/service-template/migrations"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close(); pool.Close() })
	return db
}

// schema describes everything a migration can change, in a stable order,
// leaving out goose's own bookkeeping table.
func schema(t *testing.T, db *sql.DB) string {
	t.Helper()
	queries := []string{
		`SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable ||
		        ' default=' || coalesce(column_default, '') || ' identity=' || is_identity
		   FROM information_schema.columns
		  WHERE table_schema = 'public' AND table_name <> 'goose_db_version'`,
		`SELECT 'index ' || indexdef FROM pg_indexes
		  WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`,
		`SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		   FROM pg_constraint
		  WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'goose_db_version'`,
		`SELECT 'sequence ' || sequence_name FROM information_schema.sequences
		  WHERE sequence_schema = 'public' AND sequence_name NOT LIKE 'goose_db_version%'`,
		`SELECT 'object ' || c.relkind::text || ' ' || c.relname FROM pg_class c
		  WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE 'goose_db_version%'`,
		`SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ')' FROM pg_proc p
		  WHERE p.pronamespace = 'public'::regnamespace`,
		`SELECT 'type ' || typname FROM pg_type
		  WHERE typnamespace = 'public'::regnamespace AND typrelid = 0`,
	}
	var lines []string
	for _, q := range queries {
		lines = append(lines, queryStrings(t, db, q+" ORDER BY 1")...)
	}
	return strings.Join(lines, "\n")
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("schema query: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntegrationEveryMigrationRoundTrips applies the migrations one by one; after each
// it reverts it and applies it again, and the schema must be identical to
// the one before the revert, and the revert must restore the previous one.
func TestIntegrationEveryMigrationRoundTrips(t *testing.T) {
	db := open(t, dbtest.NewDatabase(t, false))
	m, err := migrate.New(db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	status, err := m.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(status) == 0 {
		t.Fatal("no migrations found")
	}
	prev := schema(t, db)
	for _, s := range status {
		t.Run(s.Name, func(t *testing.T) {
			if _, err := m.To(t.Context(), s.Version); err != nil {
				t.Fatal(err)
			}
			after := schema(t, db)
			if after == prev {
				t.Errorf("%s changed nothing in the schema", s.Name)
			}
			if _, err := m.Down(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := schema(t, db); got != prev {
				t.Errorf("down did not restore the schema.\nbefore up:\n%s\nafter down:\n%s", prev, got)
			}
			if _, err := m.To(t.Context(), s.Version); err != nil {
				t.Fatal(err)
			}
			if got := schema(t, db); got != after {
				t.Errorf("up again gave a different schema.\nfirst:\n%s\nagain:\n%s", after, got)
			}
			prev = after
		})
	}
	if v, err := m.Version(t.Context()); err != nil || v != status[len(status)-1].Version {
		t.Fatalf("Version() = %d, %v; want %d", v, err, status[len(status)-1].Version)
	}
}

// TestIntegrationFailedMigrationChangesNothing: a migration that fails half-way leaves
// both the recorded version and the schema exactly as they were.
func TestIntegrationFailedMigrationChangesNothing(t *testing.T) {
	fsys := fstest.MapFS{
		"00001_good.sql": {Data: []byte("-- +goose Up\nCREATE TABLE good (id int);\n-- +goose Down\nDROP TABLE good;\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\n" +
			"CREATE TABLE half (id int);\n" +
			"INSERT INTO half VALUES (1);\n" +
			"SELECT 1/0;\n" + // fails after two statements succeeded
			"-- +goose Down\nDROP TABLE half;\n")},
	}
	db := open(t, dbtest.NewDatabase(t, false))
	m, err := migrate.New(db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.To(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	before := schema(t, db)

	results, err := m.Up(t.Context())
	if err == nil {
		t.Fatal("Up succeeded, want the division by zero to fail it")
	}
	if !strings.Contains(err.Error(), "00002_bad.sql failed and was rolled back") {
		t.Errorf("error does not name the failed file: %v", err)
	}
	if len(results) != 0 {
		t.Errorf("results = %+v, want none applied", results)
	}
	if v, err := m.Version(t.Context()); err != nil || v != 1 {
		t.Errorf("version after failure = %d, %v; want 1", v, err)
	}
	if got := schema(t, db); got != before {
		t.Errorf("schema changed by a failed migration:\nbefore:\n%s\nafter:\n%s", before, got)
	}
}

func TestIntegrationToRejectsUnknownVersion(t *testing.T) {
	db := open(t, dbtest.NewDatabase(t, false))
	m, err := migrate.New(db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.To(t.Context(), 999)
	if err == nil || !strings.Contains(err.Error(), "migrate to 999: no such migration") {
		t.Fatalf("To(999) = %v", err)
	}
	if v, _ := m.Version(t.Context()); v != 0 {
		t.Fatalf("version = %d after a refused migrate, want 0", v)
	}
}

func TestIntegrationDownAtZeroIsAClearError(t *testing.T) {
	db := open(t, dbtest.NewDatabase(t, false))
	m, err := migrate.New(db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Fatalf("Down() at version 0 = %v", err)
	}
}

// TestMigrationFilesAreReversible checks the files themselves, without a
// database: each has both sections, and versions are unique and sequential.
func TestMigrationFilesAreReversible(t *testing.T) {
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		n++
		data, err := migrations.FS.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, marker := range []string{"-- +goose Up", "-- +goose Down"} {
			if !strings.Contains(string(data), marker) {
				t.Errorf("%s lacks %q", e.Name(), marker)
			}
		}
		if want := fmt.Sprintf("%05d_", n); !strings.HasPrefix(e.Name(), want) {
			t.Errorf("%s: want prefix %s (numbered in sequence)", e.Name(), want)
		}
	}
}

// TestIntegrationDownToNeverApplies: a rollback target above the current
// version is refused instead of migrating up.
func TestIntegrationDownToNeverApplies(t *testing.T) {
	db := open(t, dbtest.NewDatabase(t, false))
	m, err := migrate.New(db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.To(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DownTo(t.Context(), 2); err == nil || !strings.Contains(err.Error(), "at version 1") {
		t.Fatalf("DownTo(2) at version 1 = %v, want a refusal", err)
	}
	if v, _ := m.Version(t.Context()); v != 1 {
		t.Fatalf("version = %d after a refused rollback, want 1", v)
	}
	rs, err := m.DownTo(t.Context(), 0)
	if err != nil || len(rs) != 1 || rs[0].Direction != "down" {
		t.Fatalf("DownTo(0) = %+v, %v", rs, err)
	}
}

func TestLatest(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    int64
		wantErr string
	}{
		{"none", fstest.MapFS{}, 0, ""},
		{"highest wins, order of files aside", fstest.MapFS{
			"00002_b.sql": {}, "00010_c.sql": {}, "00001_a.sql": {}, "README.md": {},
		}, 10, ""},
		{"a file without a number", fstest.MapFS{"add_users.sql": {}}, 0, "migration add_users.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := migrate.Latest(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Latest = %d, %v; want an error naming %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Latest = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	// The repository's own: what the service reports it expects.
	if v, err := migrate.Latest(migrations.FS); err != nil || v < 1 {
		t.Errorf("Latest(migrations.FS) = %d, %v", v, err)
	}
}

// TestIntegrationDatabaseVersion reads the version without goose: 0 before
// the version table exists, then what goose recorded, up and down.
func TestIntegrationDatabaseVersion(t *testing.T) {
	url := dbtest.NewDatabase(t, false)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if v, err := migrate.DatabaseVersion(t.Context(), pool); err != nil || v != 0 {
		t.Fatalf("before any migration: %d, %v; want 0", v, err)
	}
	m, err := migrate.New(open(t, url), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := migrate.Latest(migrations.FS)
	if _, err := m.Up(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := migrate.DatabaseVersion(t.Context(), pool); err != nil || v != latest {
		t.Fatalf("after up: %d, %v; want %d", v, err, latest)
	}
	if _, err := m.Down(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := migrate.DatabaseVersion(t.Context(), pool); err != nil || v != latest-1 {
		t.Fatalf("after down: %d, %v; want %d", v, err, latest-1)
	}
}
