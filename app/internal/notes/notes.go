// Package notes is the service's one resource: short notes kept in Postgres.
package notes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fractionate/service-template/app/internal/postgres"
)

// Limits, enforced here for clear errors and by the schema as a backstop.
const (
	MaxTitle = 200
	MaxBody  = 10000
)

// Note is one note.
type Note struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrNotFound means no note has the ID.
var ErrNotFound = errors.New("note not found")

// ValidationError is bad input from a client.
type ValidationError struct{ Field, Reason string }

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks a new note's fields.
func Validate(title, body string) error {
	switch n := utf8.RuneCountInString(title); {
	case strings.TrimSpace(title) == "":
		return &ValidationError{"title", "is required"}
	case n > MaxTitle:
		return &ValidationError{"title", fmt.Sprintf("is %d characters; the limit is %d", n, MaxTitle)}
	}
	if n := utf8.RuneCountInString(body); n > MaxBody {
		return &ValidationError{"body", fmt.Sprintf("is %d characters; the limit is %d", n, MaxBody)}
	}
	if !utf8.ValidString(title) || !utf8.ValidString(body) || strings.ContainsRune(title+body, 0) {
		return &ValidationError{"title/body", "must be valid UTF-8 without NUL characters"}
	}
	return nil
}

// DefaultQueryTimeout bounds each database call when NewStore is given none.
const DefaultQueryTimeout = 3 * time.Second

// UnavailableError says a dependency could not answer (down, refusing,
// too slow): the request may succeed later, unlike after other errors.
type UnavailableError struct {
	Dependency string // "postgres"
	Err        error
}

func (e *UnavailableError) Error() string { return e.Dependency + " unavailable: " + e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable names the dependency; the HTTP layer answers 503 for it.
func (e *UnavailableError) Unavailable() string { return e.Dependency }

// Store keeps notes in Postgres.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// NewStore returns a Store on pool whose every call gives the database at
// most queryTimeout (DefaultQueryTimeout when zero or less): a database that
// accepts and never answers must not hold a request, or its connection,
// for as long as the client waits.
func NewStore(pool *pgxpool.Pool, queryTimeout time.Duration) *Store {
	if queryTimeout <= 0 {
		queryTimeout = DefaultQueryTimeout
	}
	return &Store{pool: pool, timeout: queryTimeout}
}

// call runs one database call under the store's deadline. An error that
// means the database could not answer becomes an *UnavailableError.
func (s *Store) call(parent context.Context, what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	err := f(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return err
	case parent.Err() == nil && postgres.Unavailable(err): // not when the caller gave up
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within database.query_timeout (%s): %w", s.timeout, err)
		}
		return &UnavailableError{Dependency: "postgres", Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Create validates and inserts a note.
func (s *Store) Create(ctx context.Context, title, body string) (Note, error) {
	if err := Validate(title, body); err != nil {
		return Note{}, err
	}
	var n Note
	err := s.call(ctx, "insert note", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx,
			`INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id, title, body, created_at`,
			title, body).Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt)
	})
	if err != nil {
		return Note{}, err
	}
	return n, nil
}

// Get returns the note with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Note, error) {
	var n Note
	err := s.call(ctx, fmt.Sprintf("get note %d", id), func(ctx context.Context) error {
		return s.pool.QueryRow(ctx,
			`SELECT id, title, body, created_at FROM notes WHERE id = $1`, id).
			Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Note{}, ErrNotFound
	}
	if err != nil {
		return Note{}, err
	}
	return n, nil
}

// List returns up to limit notes, newest first, older than the note with ID
// before (0 for the newest).
func (s *Store) List(ctx context.Context, limit int, before int64) ([]Note, error) {
	var list []Note
	err := s.call(ctx, "list notes", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `
			SELECT id, title, body, created_at FROM notes
			WHERE $2::bigint = 0
			   OR (created_at, id) < (SELECT created_at, id FROM notes WHERE id = $2)
			ORDER BY created_at DESC, id DESC
			LIMIT $1`, limit, before)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Note, error) {
			var n Note
			err := row.Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt)
			return n, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}
