// Package dbtest gives integration tests a real Postgres: one container per
// test package, started on first use, and a fresh database per test, cloned
// from a template database that already has every migration applied.
//
// A package using it calls Main from TestMain so the container is removed
// when its tests end, pass or fail.
//
// Tests that use it follow internal/dockertest's rule: named
// TestIntegration..., skipped with a reason when Docker is absent, failed
// instead under TEST_REQUIRE_DOCKER=1.
package dbtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fractionate/service-template/app/internal/migrate"
	"github.com/fractionate/service-template/internal/dockertest"
	"github.com/fractionate/service-template/migrations"
)

// DefaultImage is the Postgres image; POSTGRES_IMAGE overrides it.
const DefaultImage = "postgres:16-alpine"

const templateDB = "migrated_template"

var (
	once      sync.Once
	shared    *Postgres
	sharedErr error
	counter   atomic.Int64
	createMu  sync.Mutex // CREATE DATABASE ... TEMPLATE fails if run concurrently
)

// Main runs the package's tests and removes the shared container afterwards.
// Use it as: func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.terminate(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: remove container:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Postgres is one running Postgres container.
type Postgres struct {
	Container *tcpostgres.PostgresContainer
	AdminURL  string // the container's maintenance database
}

// Start runs a Postgres container and waits until it answers queries.
func Start(ctx context.Context) (*Postgres, error) {
	image := os.Getenv("POSTGRES_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		testcontainers.WithWaitStrategyAndDeadline(60*time.Second,
			wait.ForSQL("5432/tcp", "pgx", func(host string, port network.Port) string {
				return fmt.Sprintf("postgres://postgres:postgres@%s/postgres?sslmode=disable", net.JoinHostPort(host, port.Port()))
			}).WithStartupTimeout(60*time.Second)),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("start postgres (%s): %w", image, err)
	}
	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("postgres connection string: %w", err)
	}
	return &Postgres{Container: ctr, AdminURL: dsn}, nil
}

func (p *Postgres) terminate() error { return testcontainers.TerminateContainer(p.Container) }

// Dedicated starts a Postgres container for one test (one that stops it, say)
// and removes it when the test ends.
func Dedicated(t testing.TB) *Postgres {
	t.Helper()
	dockertest.Require(t)
	p, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.terminate(); err != nil {
			t.Errorf("remove postgres container: %v", err)
		}
	})
	return p
}

// sharedPostgres starts the package's container once and prepares the
// migrated template database in it.
func sharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	dockertest.Require(t)
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = Start(ctx)
		if sharedErr == nil {
			sharedErr = shared.createTemplate(ctx)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func (p *Postgres) createTemplate(ctx context.Context) error {
	if err := p.exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, withDatabase(p.AdminURL, templateDB))
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := migrate.FromPool(pool, migrations.FS)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	return nil
}

func (p *Postgres) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.AdminURL)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// NewDatabase creates a database for this test only and returns its URL.
// With migrated, every migration is already applied; otherwise it is empty.
// The database is dropped when the test ends.
func NewDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	p := sharedPostgres(t)
	return p.NewDatabase(t, migrated)
}

// NewDatabase creates a database in p; see the package-level NewDatabase.
func (p *Postgres) NewDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), counter.Add(1))
	template := "template0"
	if migrated {
		template = templateDB
	}
	createMu.Lock()
	err := p.exec(t.Context(), fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
	createMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return withDatabase(p.AdminURL, name)
}

// NewPool returns a pool on a fresh, migrated database, closed at the end of
// the test.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), NewDatabase(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func withDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad admin URL: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

// Refused connects as user to database on a loopback port nothing listens
// on, and returns that address and the error pgx gives: a real refused
// connection, naming the user, database, host and port as real errors do.
// It needs no Docker: for tests of how errors are reported.
func Refused(t testing.TB, user, database string) (addr string, err error) {
	t.Helper()
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(dockertest.FreePort(t)))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://"+user+":pw@"+addr+"/"+database+"?sslmode=disable")
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatalf("connected to %s, where nothing should listen", addr)
	}
	return addr, err
}
