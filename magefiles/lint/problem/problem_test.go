package problem

import (
	"errors"
	"testing"
)

func TestList(t *testing.T) {
	l := &List{File: "Dockerfile"}
	if err := l.Err(); err != nil {
		t.Fatalf("empty list: Err() = %v, want nil", err)
	}
	l.Add(7, "second %s", "problem")
	l.Add(0, "no position")
	l.Add(3, "first")
	err := l.Err()
	var got *List
	if !errors.As(err, &got) {
		t.Fatalf("Err() = %T, want *List", err)
	}
	want := "Dockerfile: no position\nDockerfile:3: first\nDockerfile:7: second problem"
	if err.Error() != want {
		t.Fatalf("Error() =\n%s\nwant\n%s", err, want)
	}
}
