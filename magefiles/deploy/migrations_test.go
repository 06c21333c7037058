package deploy

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseMigrateStatus(t *testing.T) {
	out := `{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"configuration","warning":"x"}
applied  00001_create_notes.sql
applied  00002_index_notes_by_recency.sql
pending  00003_add_tags.sql
pending  00004_backfill.sql
app: something else
`
	applied, pending := ParseMigrateStatus(out)
	if !slices.Equal(applied, []string{"00001_create_notes.sql", "00002_index_notes_by_recency.sql"}) ||
		!slices.Equal(pending, []string{"00003_add_tags.sql", "00004_backfill.sql"}) {
		t.Errorf("applied %v, pending %v", applied, pending)
	}
}

func TestMigrationsPrint(t *testing.T) {
	tests := []struct {
		name string
		m    *Migrations
		want string
	}{
		{"no migration runs", nil, ""},
		{"pending", &Migrations{Asked: true, Applied: []string{"1.sql"}, Pending: []string{"00002_a.sql", "00003_b.sql"}, Took: 2345 * time.Millisecond},
			"  migrations  2 pending (asked in 2.3s), applied once before the release's services change:\n              00002_a.sql\n              00003_b.sql\n"},
		{"none", &Migrations{Asked: true, Applied: []string{"1.sql", "2.sql"}, Took: time.Second}, "  migrations  none pending (2 applied; asked in 1s); no migration job runs\n"},
		{"not asked", &Migrations{Note: "service postgres is created by this deploy: every migration of the release is pending"},
			"  migrations  unknown: service postgres is created by this deploy: every migration of the release is pending; app migrate up runs once before the release's services change\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.m.Print(&b)
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestJobNamesAreUnique(t *testing.T) {
	a, b := jobName("svc", "probe"), jobName("svc", "probe")
	if a == b || !strings.HasPrefix(a, "svc_probe-") || len(a) > 63 {
		t.Errorf("job names %q and %q", a, b)
	}
}
