package notes_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fractionate/service-template/app/internal/dbtest"
	"github.com/fractionate/service-template/app/internal/notes"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestValidate(t *testing.T) {
	tests := []struct {
		name, title, body string
		wantField         string // "" means valid
	}{
		{"ok", "groceries", "milk", ""},
		{"empty body ok", "t", "", ""},
		{"title at limit", strings.Repeat("é", notes.MaxTitle), "", ""},
		{"missing title", "", "x", "title"},
		{"blank title", "  \t", "x", "title"},
		{"title too long", strings.Repeat("a", notes.MaxTitle+1), "", "title"},
		{"body too long", "t", strings.Repeat("b", notes.MaxBody+1), "body"},
		{"invalid utf-8", "t\xff", "", "title/body"},
		{"NUL", "t", "a\x00b", "title/body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := notes.Validate(tt.title, tt.body)
			var v *notes.ValidationError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantField != "" && (!errors.As(err, &v) || v.Field != tt.wantField):
				t.Fatalf("Validate = %v, want a ValidationError on %s", err, tt.wantField)
			}
		})
	}
}

func TestIntegrationStore(t *testing.T) {
	s := notes.NewStore(dbtest.NewPool(t), 0)
	ctx := t.Context()

	a, err := s.Create(ctx, "first", "body one")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Title != "first" || a.Body != "body one" || a.CreatedAt.IsZero() {
		t.Fatalf("Create = %+v", a)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil || got.Title != a.Title || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.Get(ctx, a.ID+1000); !errors.Is(err, notes.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, "", "x"); err == nil {
		t.Fatal("Create with an empty title succeeded")
	}

	var ids []int64
	for _, title := range []string{"b", "c", "d", "e"} {
		n, err := s.Create(ctx, title, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	page, err := s.List(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[2] {
		t.Fatalf("first page = %+v, want the two newest", page)
	}
	page, err = s.List(ctx, 10, page[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].ID != ids[1] || page[2].ID != a.ID {
		t.Fatalf("second page = %+v, want the three older ones", page)
	}
}

// TestIntegrationSchemaIsTheBackstop: the database itself rejects what Validate would,
// should a caller skip it.
func TestIntegrationSchemaIsTheBackstop(t *testing.T) {
	pool := dbtest.NewPool(t)
	_, err := pool.Exec(t.Context(), `INSERT INTO notes (title) VALUES ($1)`, strings.Repeat("x", notes.MaxTitle+1))
	if err == nil || !strings.Contains(err.Error(), "check constraint") {
		t.Fatalf("insert of an overlong title = %v, want a check constraint violation", err)
	}
}
