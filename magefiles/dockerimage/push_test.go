package dockerimage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/fractionate/service-template/internal/secret"
)

type fakePushResponse struct{ io.ReadCloser }

func (fakePushResponse) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	panic("not used")
}
func (fakePushResponse) Wait(context.Context) error { panic("not used") }

// fakePusher answers each push with the stream streams[ref].
type fakePusher struct {
	streams  map[string]string
	err      error
	loginErr error
	logins   []string
	auth     []string
	pushed   []string
}

func (f *fakePusher) RegistryLogin(_ context.Context, o client.RegistryLoginOptions) (client.RegistryLoginResult, error) {
	f.logins = append(f.logins, o.Username+"@"+o.ServerAddress)
	return client.RegistryLoginResult{}, f.loginErr
}

func (f *fakePusher) ImagePush(_ context.Context, ref string, o client.ImagePushOptions) (client.ImagePushResponse, error) {
	f.pushed = append(f.pushed, ref)
	f.auth = append(f.auth, o.RegistryAuth)
	if f.err != nil {
		return nil, f.err
	}
	return fakePushResponse{io.NopCloser(strings.NewReader(f.streams[ref]))}, nil
}

func pushStream(tag, digest string) string {
	return fmt.Sprintf(`{"status":"The push refers to repository [ghcr.io/acme/api]"}
{"status":"Preparing","progressDetail":{},"id":"5f70bf18a086"}
{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[=>  ]","id":"5f70bf18a086"}
{"status":"Pushed","progressDetail":{},"id":"5f70bf18a086"}
{"status":"%s: digest: %s size: 528"}
{"progressDetail":{},"aux":{"Tag":"%s","Digest":"%s","Size":528}}
`, tag, digest, tag, digest)
}

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestPush(t *testing.T) {
	refs := []string{"ghcr.io/acme/api:abc1234", "ghcr.io/acme/api:main"}
	api := &fakePusher{streams: map[string]string{
		refs[0]: pushStream("abc1234", digestA),
		refs[1]: pushStream("main", digestA),
	}}
	creds := Credentials{Username: "ci", Password: secret.New("hunter2"), Source: "test"}
	var out bytes.Buffer
	got, err := Push(context.Background(), api, refs, creds, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ghcr.io/acme/api:abc1234@" + digestA, "ghcr.io/acme/api:main@" + digestA}
	var gotS []string
	for _, p := range got {
		gotS = append(gotS, p.String())
	}
	if !slices.Equal(gotS, want) {
		t.Errorf("pushed = %q, want %q", gotS, want)
	}
	if want := []string{"ci@ghcr.io"}; !slices.Equal(api.logins, want) {
		t.Errorf("logins = %q, want %q", api.logins, want)
	}
	if !slices.Equal(api.pushed, refs) {
		t.Errorf("pushed refs %q, want %q", api.pushed, refs)
	}
	// The credentials reach the engine in X-Registry-Auth, for the ref's registry.
	raw, err := base64.URLEncoding.DecodeString(api.auth[0])
	if err != nil {
		t.Fatal(err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		t.Fatal(err)
	}
	if ac.Username != "ci" || ac.Password != "hunter2" || ac.ServerAddress != "ghcr.io" {
		t.Errorf("auth config = %+v", ac)
	}
	if o := out.String(); !strings.Contains(o, "5f70bf18a086: Pushed\n") || strings.Contains(o, "[=>") || strings.Contains(o, "hunter2") {
		t.Errorf("progress = %q", o)
	}
}

func TestPushAnonymousSendsNoAuth(t *testing.T) {
	api := &fakePusher{streams: map[string]string{"r.example/a:t": pushStream("t", digestA)}}
	if _, err := Push(context.Background(), api, []string{"r.example/a:t"}, Credentials{}, nil); err != nil {
		t.Fatal(err)
	}
	// An empty configuration, not no header: the 20.10 engine insists on one.
	if raw, err := base64.URLEncoding.DecodeString(api.auth[0]); err != nil || string(raw) != "{}" {
		t.Errorf("anonymous push sent auth %q, want base64 of {}", api.auth[0])
	}
}

func TestPushFailures(t *testing.T) {
	refs := []string{"ghcr.io/acme/api:abc1234", "ghcr.io/acme/api:main"}
	creds := Credentials{Username: "ci", Password: secret.New("canary-pw-41"), Source: "REGISTRY_USERNAME/REGISTRY_PASSWORD"}
	tests := []struct {
		name    string
		api     *fakePusher
		creds   Credentials
		wantErr []string
		pushed  int
	}{
		{
			name: "unauthorized",
			api: &fakePusher{streams: map[string]string{
				refs[0]: `{"status":"The push refers to repository [ghcr.io/acme/api]"}` + "\n" +
					`{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}`,
			}},
			creds:   creds,
			wantErr: []string{"push ghcr.io/acme/api:abc1234: unauthorized: authentication required", "credentials from REGISTRY_USERNAME/REGISTRY_PASSWORD"},
		},
		{
			name: "unauthorized, anonymous",
			api: &fakePusher{streams: map[string]string{
				refs[0]: `{"errorDetail":{"message":"denied: requested access to the resource is denied"}}`,
			}},
			wantErr: []string{"denied: requested access", "no credentials were sent"},
		},
		{
			name:    "login refused",
			api:     &fakePusher{loginErr: errors.New("Error response from daemon: login attempt to http://ghcr.io/v2/ failed with status: 401 Unauthorized")},
			creds:   creds,
			wantErr: []string{"push ghcr.io/acme/api:abc1234: ghcr.io refused the login of ci (credentials from REGISTRY_USERNAME/REGISTRY_PASSWORD): ", "401 Unauthorized"},
		},
		{
			name:    "engine refuses the request",
			api:     &fakePusher{err: errors.New("Error response from daemon: An image does not exist locally with the tag: ghcr.io/acme/api")},
			creds:   creds,
			wantErr: []string{"push ghcr.io/acme/api:abc1234: Error response from daemon: An image does not exist locally"},
		},
		{
			name: "no digest reported",
			api: &fakePusher{streams: map[string]string{
				refs[0]: `{"status":"The push refers to repository [ghcr.io/acme/api]"}`,
			}},
			wantErr: []string{"without reporting the pushed digest"},
		},
		{
			name: "tags at different digests",
			api: &fakePusher{streams: map[string]string{
				refs[0]: pushStream("abc1234", digestA),
				refs[1]: pushStream("main", digestB),
			}},
			wantErr: []string{"push ghcr.io/acme/api:main: the registry has it at " + digestB + ", but ghcr.io/acme/api:abc1234 is at " + digestA},
			pushed:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			pushed, err := Push(context.Background(), tt.api, refs, tt.creds, &out)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error()+out.String(), "canary-pw-41") {
				t.Errorf("the password leaked: %v\n%s", err, out.String())
			}
			if len(pushed) != tt.pushed {
				t.Errorf("reported %d pushed, want %d", len(pushed), tt.pushed)
			}
		})
	}
}

func TestReadStreamLines(t *testing.T) {
	in := `{"stream":"Step 1/2 : FROM scratch\n"}
{"status":"Pulling from library/golang","id":"1.26"}
{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"abc"}
{"status":"Digest: sha256:x"}
{"status":"Retrying in 5 seconds","id":"abc"}
{"status":"Retrying in 4 seconds","id":"abc"}
{"status":"Retrying in 1 second","id":"abc"}
{"status":"Retrying in 10 seconds","id":"abc"}
{"status":"Retrying in 9 seconds","id":"abc"}
`
	var out bytes.Buffer
	if err := readStream(strings.NewReader(in), &out, nil); err != nil {
		t.Fatal(err)
	}
	want := "Step 1/2 : FROM scratch\n1.26: Pulling from library/golang\nDigest: sha256:x\nabc: Retrying in 5 seconds\nabc: Retrying in 10 seconds\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if err := readStream(strings.NewReader(`{"stream":`), io.Discard, nil); err == nil {
		t.Error("truncated stream: no error")
	}
	var ee *EngineError
	err := readStream(strings.NewReader(`{"errorDetail":{"code":1,"message":"boom "}}`), io.Discard, nil)
	if !errors.As(err, &ee) || ee.Message != "boom" || ee.Code != 1 {
		t.Errorf("err = %#v", err)
	}
}
