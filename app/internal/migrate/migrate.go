// Package migrate applies the embedded SQL migrations with goose: one
// transaction per migration (a failure leaves version and schema as they
// were) and a Postgres advisory lock, so concurrent runs apply each migration
// exactly once.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrator runs migrations against one database.
type Migrator struct {
	p  *goose.Provider
	db *sql.DB // closed by Close when the Migrator opened it
}

// FromPool returns a Migrator on the database of pool; Close releases it.
func FromPool(pool *pgxpool.Pool, fsys fs.FS) (*Migrator, error) {
	db := stdlib.OpenDBFromPool(pool)
	m, err := New(db, fsys)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	m.db = db
	return m, nil
}

// Close releases what FromPool opened.
func (m *Migrator) Close() error {
	if m.db == nil {
		return nil
	}
	return m.db.Close()
}

// New returns a Migrator for the migrations in fsys (the top of fsys holds
// the .sql files).
func New(db *sql.DB, fsys fs.FS) (*Migrator, error) {
	// Retry the lock every second for up to two minutes: a concurrent
	// deploy's migration should finish well within that.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{p: p}, nil
}

// Result is one applied (or reverted) migration.
type Result struct {
	Version   int64
	Name      string
	Direction string // "up" or "down"
	Duration  string
}

func results(rs ...*goose.MigrationResult) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		if r == nil || r.Source == nil {
			continue
		}
		out = append(out, Result{Version: r.Source.Version, Name: baseName(r.Source.Path), Direction: r.Direction, Duration: r.Duration.String()})
	}
	return out
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	rs, err := m.p.Up(ctx)
	return done("migrate up", rs, err)
}

// Down reverts the most recent migration.
func (m *Migrator) Down(ctx context.Context) ([]Result, error) {
	r, err := m.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return nil, errors.New("migrate down: nothing to roll back, the database is at version 0")
	}
	return done("migrate down", []*goose.MigrationResult{r}, err)
}

// To migrates up or down to version, which must be 0 or a known migration.
func (m *Migrator) To(ctx context.Context, version int64) ([]Result, error) {
	current, err := m.check(ctx, "migrate to", version)
	if err != nil {
		return nil, err
	}
	if version >= current {
		rs, err := m.p.UpTo(ctx, version)
		return done(fmt.Sprintf("migrate up to %d", version), rs, err)
	}
	rs, err := m.p.DownTo(ctx, version)
	return done(fmt.Sprintf("migrate down to %d", version), rs, err)
}

// DownTo reverts migrations until the database is at version; unlike To it
// never applies one, so a rollback cannot turn into a migration by a typo.
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]Result, error) {
	op := fmt.Sprintf("migrate down to %d", version)
	current, err := m.check(ctx, op, version)
	if err != nil {
		return nil, err
	}
	if version > current {
		return nil, fmt.Errorf("%s: the database is at version %d, below it; use migrate up or to", op, current)
	}
	rs, err := m.p.DownTo(ctx, version)
	return done(op, rs, err)
}

// check validates a target version and returns the current one.
func (m *Migrator) check(ctx context.Context, op string, version int64) (int64, error) {
	known := []int64{0}
	for _, s := range m.p.ListSources() {
		known = append(known, s.Version)
	}
	if !slices.Contains(known, version) {
		return 0, fmt.Errorf("%s %d: no such migration; known versions: %v", op, version, known)
	}
	current, err := m.p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s %d: read current version: %w", op, version, err)
	}
	return current, nil
}

// Status is one migration and whether it is applied.
type Status struct {
	Version int64
	Name    string
	Applied bool
}

// Status lists every migration in order.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	ss, err := m.p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Status, 0, len(ss))
	for _, s := range ss {
		out = append(out, Status{Version: s.Source.Version, Name: baseName(s.Source.Path), Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

// Version is the database's current migration version (0 for none).
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	v, err := m.p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read migration version: %w", err)
	}
	return v, nil
}

// done converts goose's results and names the operation in the error. When a
// migration fails, the ones applied before it stay applied and are
// returned; the failed one was rolled back and its file is named.
func done(op string, rs []*goose.MigrationResult, err error) ([]Result, error) {
	if err == nil {
		return results(rs...), nil
	}
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		out := results(partial.Applied...)
		if partial.Failed != nil && partial.Failed.Source != nil {
			return out, fmt.Errorf("%s: %s failed and was rolled back: %w", op, baseName(partial.Failed.Source.Path), partial.Err)
		}
		return out, fmt.Errorf("%s: %w", op, partial.Err)
	}
	return results(rs...), fmt.Errorf("%s: %w", op, err)
}

func baseName(p string) string { return path.Base(p) }

// Latest is the highest version among the migrations in fsys: the schema
// version a binary embedding them expects. 0 when there are none.
func Latest(fsys fs.FS) (int64, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	var latest int64
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// DatabaseVersion reads the version the database is at, as goose records
// it, with one query: unlike Migrator.Version it neither takes the
// migration lock (a running migration would hold the caller for its whole
// length) nor creates the version table. A database never migrated is at 0.
func DatabaseVersion(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var v sql.NullInt64
	err := pool.QueryRow(ctx, "SELECT max(version_id) FROM "+goose.DefaultTablename).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return v.Int64, nil
}
