package dockerimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/client"
)

// PushAPI is the part of the engine client Push needs.
type PushAPI interface {
	ImagePush(ctx context.Context, image string, options client.ImagePushOptions) (client.ImagePushResponse, error)
	RegistryLogin(ctx context.Context, options client.RegistryLoginOptions) (client.RegistryLoginResult, error)
}

// Pushed is one tag in the registry.
type Pushed struct {
	Ref    string // repository:tag
	Digest string // sha256:... of the manifest
}

// String is ref@digest, the form a deploy pins.
func (p Pushed) String() string { return p.Ref + "@" + p.Digest }

// Push pushes every ref through the engine, with creds for the registry,
// as `docker push` does. The engine recompresses the layer, so the
// registry's digest is not the assembled image's (Built.Digest), the one a
// rebuild reproduces: PushImage pushes the assembled bytes, and is what
// image:push uses.
//
// Push checks that each push is acknowledged with a digest and that all refs
// end at the same one. Progress goes to out. A refused push is an error that
// names the ref and quotes the registry; credentials never appear in it.
//
// A username and password are checked first with the engine's login
// endpoint (which stores nothing): the engine retries a refused layer upload
// for about a minute, a refused login fails at once.
func Push(ctx context.Context, api PushAPI, refs []string, creds Credentials, out io.Writer) ([]Pushed, error) {
	if out == nil {
		out = io.Discard
	}
	if len(refs) == 0 {
		return nil, errors.New("push: no tags to push")
	}
	if creds.Username != "" && creds.Password.IsSet() {
		ref, err := reference.ParseNormalizedNamed(refs[0])
		if err != nil {
			return nil, fmt.Errorf("push %s: %w", refs[0], err)
		}
		_, err = api.RegistryLogin(ctx, client.RegistryLoginOptions{
			Username:      creds.Username,
			Password:      creds.Password.Reveal(),
			ServerAddress: reference.Domain(ref),
		})
		if err != nil {
			return nil, fmt.Errorf("push %s: %s refused the login of %s (credentials from %s): %w",
				refs[0], reference.Domain(ref), creds.Username, creds.Source, err)
		}
	}
	var pushed []Pushed
	for _, r := range refs {
		ref, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			return pushed, fmt.Errorf("push %s: %w", r, err)
		}
		auth, err := creds.EncodedAuth(reference.Domain(ref))
		if err != nil {
			return pushed, fmt.Errorf("push %s: %w", r, err)
		}
		digest, err := pushOne(ctx, api, r, auth, out)
		if err != nil {
			return pushed, fmt.Errorf("push %s: %w%s", r, err, hint(err, creds))
		}
		if len(pushed) > 0 && digest != pushed[0].Digest {
			return append(pushed, Pushed{r, digest}), fmt.Errorf("push %s: the registry has it at %s, but %s is at %s: the tags do not name one image",
				r, digest, pushed[0].Ref, pushed[0].Digest)
		}
		pushed = append(pushed, Pushed{Ref: r, Digest: digest})
	}
	return pushed, nil
}

func pushOne(ctx context.Context, api PushAPI, ref, auth string, out io.Writer) (string, error) {
	resp, err := api.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", err
	}
	defer resp.Close()
	var digest string
	err = readStream(resp, out, func(raw json.RawMessage) error {
		var a struct{ Tag, Digest string }
		if json.Unmarshal(raw, &a) == nil && a.Digest != "" {
			digest = a.Digest
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(digest, "sha256:") {
		return "", errors.New("the engine finished without reporting the pushed digest")
	}
	return digest, nil
}

// hint adds what to do about a refused login.
func hint(err error, creds Credentials) string {
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "unauthorized") && !strings.Contains(msg, "authentication required") && !strings.Contains(msg, "denied") {
		return ""
	}
	if creds.Anonymous() {
		return " (no credentials were sent: set REGISTRY_USERNAME and REGISTRY_PASSWORD, GITHUB_TOKEN for ghcr.io, or docker login)"
	}
	return " (credentials from " + creds.Source + ")"
}
