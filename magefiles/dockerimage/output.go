package dockerimage

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/distribution/reference"
)

// Pinned is the image the pushed tags name, as repository@digest: the form
// a deploy takes, so that it runs the bytes that were pushed whatever
// happens to the tags later. The tags must all name one image (Push checks
// that as it goes).
func Pinned(pushed []Pushed) (string, error) {
	if len(pushed) == 0 {
		return "", errors.New("nothing was pushed")
	}
	ref, err := reference.ParseNormalizedNamed(pushed[0].Ref)
	if err != nil {
		return "", fmt.Errorf("pushed %s: %w", pushed[0].Ref, err)
	}
	for _, p := range pushed[1:] {
		if p.Digest != pushed[0].Digest {
			return "", fmt.Errorf("%s is at %s but %s is at %s: the tags do not name one image", p.Ref, p.Digest, pushed[0].Ref, pushed[0].Digest)
		}
	}
	return reference.TrimNamed(ref).String() + "@" + pushed[0].Digest, nil
}

// AppendOutput adds key=value to the file at path, in the format of a
// GitHub Actions step output file ($GITHUB_OUTPUT).
func AppendOutput(path, key, value string) error {
	if key == "" || strings.ContainsAny(key, "=\n") || strings.Contains(value, "\n") {
		return fmt.Errorf("output %q: want a key without = or a newline and a one-line value", key)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("output file: %w", err)
	}
	if _, err := fmt.Fprintf(f, "%s=%s\n", key, value); err != nil {
		_ = f.Close()
		return fmt.Errorf("output file %s: %w", path, err)
	}
	return f.Close()
}
