package dockerimage

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
)

// NewClient connects to the engine DOCKER_HOST (and the other DOCKER_*
// variables) name; the API version is negotiated on the first request.
func NewClient() (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return c, nil
}

// PingAPI is the part of the engine client Available needs.
type PingAPI interface {
	Ping(ctx context.Context, options client.PingOptions) (client.PingResult, error)
}

// Available checks, within a few seconds, that the engine answers.
func Available(ctx context.Context, api PingAPI) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = client.DefaultDockerHost
		}
		return fmt.Errorf("the Docker engine at %s does not answer: %w", host, err)
	}
	return nil
}
