package dockerimage

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fractionate/service-template/internal/secret"
)

// PushImage puts the assembled bytes in the registry: every tag names the
// image's own digest, and the manifest is the one assembled.
func TestPushImage(t *testing.T) {
	host := startRegistry(t, nil)
	img := must(AssembleBytes([]byte("\x7fELF"), fullStamp, Platform{"linux", "amd64"}))
	want := digestOf(t, img)
	refs := Refs(host+"/acme/api", []string{"abc1234", "main", "latest"})
	var out bytes.Buffer
	pushed, err := PushImage(context.Background(), img, refs, Credentials{}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed) != 3 {
		t.Fatalf("pushed %v", pushed)
	}
	wantRaw, _ := img.RawManifest()
	for i, p := range pushed {
		if p.Ref != refs[i] || p.Digest != want {
			t.Errorf("pushed[%d] = %s, want %s@%s", i, p, refs[i], want)
		}
		ref, _ := name.ParseReference(refs[i])
		got, err := remote.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest.String() != want || !bytes.Equal(got.Manifest, wantRaw) {
			t.Errorf("%s in the registry: %s", refs[i], got.Digest)
		}
	}
	if !strings.Contains(out.String(), "pushed "+refs[2]+"@"+want) {
		t.Errorf("progress = %q", out.String())
	}
}

func TestPushImageRefused(t *testing.T) {
	img := must(AssembleBytes([]byte("\x7fELF"), fullStamp, Platform{"linux", "amd64"}))
	tests := []struct {
		name    string
		mw      func(http.Handler) http.Handler
		creds   Credentials
		wantErr string
	}{
		{name: "wrong password", mw: basicAuth("ci", "right"), creds: Credentials{Username: "ci", Password: secret.New("WRONG-canary"), Source: "REGISTRY_USERNAME/REGISTRY_PASSWORD"}, wantErr: "401 Unauthorized"},
		{name: "anonymous", mw: basicAuth("ci", "right"), wantErr: "no credentials were sent"},
		{name: "immutable tag", mw: immutableTags, wantErr: "tag is immutable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startRegistry(t, tt.mw)
			refs := Refs(host+"/acme/api", []string{"v1.0.0"})
			if tt.name == "immutable tag" {
				other := must(AssembleBytes([]byte("\x7fELF other"), fullStamp, Platform{"linux", "amd64"}))
				if _, err := PushImage(context.Background(), other, refs, tt.creds, nil); err != nil {
					t.Fatal(err)
				}
			}
			_, err := PushImage(context.Background(), img, refs, tt.creds, nil)
			if err == nil || !strings.Contains(err.Error(), "push "+refs[0]+": ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, refs[0], tt.wantErr)
			}
			if strings.Contains(err.Error(), "WRONG-canary") {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}
