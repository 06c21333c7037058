package devstack

import (
	"reflect"
	"testing"
)

func TestParsePSAndFailing(t *testing.T) {
	// One object per line, as Compose 2.21 and later print it (fields cut).
	lines := `{"ExitCode":0,"Health":"healthy","Name":"p-app-1","Service":"app","State":"running"}
{"ExitCode":0,"Health":"","Name":"p-migrate-1","Service":"migrate","State":"exited"}
{"ExitCode":0,"Health":"unhealthy","Name":"p-postgres-1","Service":"postgres","State":"running"}
{"ExitCode":0,"Health":"starting","Name":"p-redis-1","Service":"redis","State":"running"}
`
	// One array, as earlier releases print it.
	array := `[{"Service":"app","State":"exited","ExitCode":1},{"Service":"worker","State":"running"},{"Service":"cron","State":"created"},{"Service":"web","State":"restarting"}]`

	tests := []struct {
		name string
		in   string
		want []string // failing services and how
	}{
		{"lines", lines, []string{"postgres: running, unhealthy", "redis: running, starting"}},
		{"array", array, []string{"app: exited with 1", "cron: created", "web: restarting"}},
		{"nothing", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ParsePS([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range Failing(cs) {
				got = append(got, c.Service+": "+c.Describe())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Failing = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := ParsePS([]byte("not json")); err == nil {
		t.Fatal("ParsePS accepted garbage")
	}
}
