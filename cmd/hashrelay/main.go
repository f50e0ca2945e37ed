// Command hashrelay is the HashRelay daemon: a Stratum V1 proxy that holds an ASIC
// fleet's connections, checks every share, and forwards work to upstream pools.
//
//	hashrelay -listen 127.0.0.1:3333 -upstream stratum+tcp://USER[:PASS]@HOST:PORT [-upstream …] -http 127.0.0.1:8080
//	hashrelay healthcheck [-http ADDR]
//
// Every flag is also read from HASHRELAY_<FLAG> (upper case, dashes as underscores)
// and from a TOML file (-config), the command line first.
//
// Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when the server cannot
// start or stop, 2 for an invalid setting. healthcheck exits 0 when /healthz answers
// 200 and 1 otherwise, never 2 (which Docker reserves), so that it can be a
// container's HEALTHCHECK without a shell or curl.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/proxy"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return runHealthcheck(args[1:], getenv, stderr)
	}
	o, err := parseSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hashrelay:", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "hashrelay", version)
		return 0
	}
	log := newLogger(o, stderr)
	o.cfg.Version = version

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.demo {
		return runDemo(ctx, o, log, stdout)
	}
	srv, err := proxy.New(o.cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "hashrelay:", o.annotate(err))
		return 2
	}
	if err := srv.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start failed")
		return 1
	}
	<-ctx.Done()
	stop()
	log.Info().Msg("shutting down")
	// Shutdown keeps to ShutdownTimeout itself; the second more lets it finish
	// stopping what it cut short.
	sctx, cancel := context.WithTimeout(context.Background(), cmp.Or(o.cfg.ShutdownTimeout, proxy.DefaultShutdownTimeout)+time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
		return 1
	}
	return 0
}

// newLogger builds the one base logger: JSON by default, console for people.
func newLogger(o *options, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if o.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
