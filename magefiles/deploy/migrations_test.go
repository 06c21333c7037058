package deploy

import (
	"bytes"
	"regexp"
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
	applied, pending := parseMigrateStatus(out)
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

// Job names are unique, valid Swarm service names (63 characters at
// most), and tell stacks apart even when the longest stack names share
// their start.
func TestJobNamesAreUnique(t *testing.T) {
	long := strings.Repeat("s", 47) // the longest a stack may be: 48
	tests := []struct {
		name, stack, what string
		prefix            string // every name starts so
	}{
		{name: "short", stack: "svc", what: "probe", prefix: "svc_probe-"},
		{name: "the longest stack", stack: long + "a", what: "migrate-status", prefix: strings.Repeat("s", 34) + "-"},
		{name: "another longest stack", stack: long + "b", what: "migrate-status", prefix: strings.Repeat("s", 34) + "-"},
		{name: "the longest stack, a short job", stack: long + "a", what: "smoke", prefix: long + "a_smoke-"},
	}
	valid := regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`) // swarmkit's
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := jobName(tt.stack, tt.what), jobName(tt.stack, tt.what)
			for _, n := range []string{a, b} {
				if len(n) > maxServiceName || !valid.MatchString(n) || !strings.HasPrefix(n, tt.prefix) || !strings.Contains(n, "_"+tt.what+"-") {
					t.Errorf("job name %q (%d characters): want at most %d, a valid name, starting %q", n, len(n), maxServiceName, tt.prefix)
				}
			}
			if a == b {
				t.Errorf("two jobs named %q", a)
			}
			stackPart := a[:strings.LastIndex(a, "_"+tt.what)]
			if other, ok := seen[stackPart]; ok && other != tt.stack {
				t.Errorf("stacks %s and %s both name their jobs %s_...", other, tt.stack, stackPart)
			}
			seen[stackPart] = tt.stack
		})
	}
}
