// Command app is the example service: an HTTP API with health and readiness
// probes, its database migrations, and the tools an operator needs.
//
// Usage:
//
//	app [serve]                    run the HTTP service (default)
//	app migrate up|down [N]|to N|status
//	app healthcheck                exit 0 when /health answers 200 (the image's HEALTHCHECK)
//	app config                     print the effective configuration, secrets redacted
//	app probe [-all] URL...        GET each URL, one JSON line per request (the deploy's smoke check)
//	app scrape [-all] URL...       read each task's metrics, one JSON line per task (deploy:top)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots for a scratch image
	_ "time/tzdata"                            // zone data for a scratch image

	"github.com/fractionate/service-template/app/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], config.FromProcess(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage: app [serve | migrate up|down [VERSION]|to VERSION|status | healthcheck | config | probe [-all] URL... | scrape [-all] [-count N] [-every D] URL...]`

type usageError string

func (e usageError) Error() string { return string(e) + "\n" + usage }

// run executes one command. Everything it needs comes in as arguments, so
// tests can call it as main would.
func run(ctx context.Context, args []string, src config.Sources, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		_, err := fmt.Fprintln(stdout, usage)
		return err
	}
	switch cmd {
	case "probe":
		// Reads no configuration: it looks at other processes.
		return probeCommand(ctx, args, stdout)
	case "scrape":
		return scrapeCommand(ctx, args, stdout, stderr)
	}
	cfg, warnings, err := config.Load(src)
	if err != nil {
		// No logger without a configuration: a warning (a .env typo, say)
		// may explain the error, so it goes with it.
		for _, w := range warnings {
			err = fmt.Errorf("%w\nwarning: %s", err, w)
		}
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg, stderr)
	for _, w := range warnings {
		log.Warn("configuration", "warning", w.String())
	}

	switch cmd {
	case "serve":
		if len(args) > 0 {
			return usageError("serve takes no arguments")
		}
		return serve(ctx, cfg, log)
	case "migrate":
		return migrateCmd(ctx, cfg, args, stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg)
	case "config":
		return printConfig(cfg, stdout)
	default:
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
