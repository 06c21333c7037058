// Package devdb keeps a Postgres container for local development: `mage run`
// starts the service against it when no DATABASE_URL is configured. The
// container and its data volume persist between runs; remove them with
// `docker rm -f NAME && docker volume rm NAME`.
package devdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// DefaultImage is the Postgres image when POSTGRES_IMAGE is not set.
const DefaultImage = "postgres:16-alpine"

// The database is reachable on loopback only, so this well-known password
// protects nothing worth a secret; it is never used outside development.
const (
	user     = "postgres"
	password = "dev"
	database = "app"
)

var pgPort = network.MustParsePort("5432/tcp")

// Spec is the container to create, as data.
func Spec(name, image string) client.ContainerCreateOptions {
	return client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        image,
			Env:          []string{"POSTGRES_USER=" + user, "POSTGRES_PASSWORD=" + password, "POSTGRES_DB=" + database},
			ExposedPorts: network.PortSet{pgPort: struct{}{}},
			Labels:       map[string]string{"dev.service-template.role": "dev-postgres"},
		},
		HostConfig: &container.HostConfig{
			// Loopback only, on a port the engine picks.
			PortBindings: network.PortMap{pgPort: {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
			Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/var/lib/postgresql/data"}},
		},
	}
}

// Engine is the part of the Docker client Ensure needs.
type Engine interface {
	ContainerInspect(ctx context.Context, id string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, o client.ContainerStartOptions) (client.ContainerStartResult, error)
	ImagePull(ctx context.Context, ref string, o client.ImagePullOptions) (client.ImagePullResponse, error)
}

// ContainerName names the container (and its volume) after the checkout's
// directory, so two clones keep separate databases.
func ContainerName(checkoutDir string) string {
	base := strings.ToLower(filepath.Base(filepath.Clean(checkoutDir)))
	base = strings.Trim(invalidName.ReplaceAllString(base, "-"), "-.")
	if base == "" {
		base = "service"
	}
	return base + "-dev-postgres"
}

var invalidName = regexp.MustCompile(`[^a-z0-9_.-]+`)

// Configured reports whether the service's effective configuration (the
// JSON of `app config`) names a database, from any layer: then no container
// is needed.
func Configured(appConfigJSON []byte) (bool, error) {
	var cfg map[string]struct{ Source string }
	if err := json.Unmarshal(appConfigJSON, &cfg); err != nil {
		return false, fmt.Errorf("read app config output: %w", err)
	}
	db, ok := cfg["database.url"]
	if !ok {
		return false, errors.New("app config output has no database.url")
	}
	return db.Source != "default", nil
}

// Ensure starts the container called name from image (creating it, and
// pulling the image, when needed), waits until Postgres accepts connections
// and returns the database URL.
func Ensure(ctx context.Context, e Engine, name, image string, log io.Writer) (string, error) {
	info, err := e.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		fmt.Fprintf(log, "devdb: creating container %s from %s\n", name, image)
		if err := create(ctx, e, Spec(name, image), log); err != nil {
			return "", err
		}
		info, err = e.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("inspect container %s: %w", name, err)
	}
	if info.Container.State == nil || !info.Container.State.Running {
		fmt.Fprintf(log, "devdb: starting container %s\n", name)
		if _, err := e.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
			return "", fmt.Errorf("start container %s: %w", name, err)
		}
		if info, err = e.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); err != nil {
			return "", fmt.Errorf("inspect container %s: %w", name, err)
		}
	}
	port, err := hostPort(info.Container)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", name, err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: "127.0.0.1:" + port, Path: "/" + database, RawQuery: "sslmode=disable"}
	if err := waitReady(ctx, u.String(), 60*time.Second); err != nil {
		return "", fmt.Errorf("postgres in container %s: %w", name, err)
	}
	fmt.Fprintf(log, "devdb: postgres ready on 127.0.0.1:%s (container %s)\n", port, name)
	return u.String(), nil
}

func create(ctx context.Context, e Engine, spec client.ContainerCreateOptions, log io.Writer) error {
	_, err := e.ContainerCreate(ctx, spec)
	if cerrdefs.IsNotFound(err) {
		fmt.Fprintf(log, "devdb: pulling %s\n", spec.Config.Image)
		resp, perr := e.ImagePull(ctx, spec.Config.Image, client.ImagePullOptions{})
		if perr != nil {
			return fmt.Errorf("pull %s: %w", spec.Config.Image, perr)
		}
		if perr := resp.Wait(ctx); perr != nil {
			return fmt.Errorf("pull %s: %w", spec.Config.Image, perr)
		}
		_, err = e.ContainerCreate(ctx, spec)
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	return nil
}

func hostPort(c container.InspectResponse) (string, error) {
	if c.NetworkSettings == nil {
		return "", errors.New("no network settings")
	}
	for _, b := range c.NetworkSettings.Ports[pgPort] {
		if b.HostPort != "" {
			return b.HostPort, nil
		}
	}
	return "", errors.New("port 5432 is not published")
}

func waitReady(ctx context.Context, dsn string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", within, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
