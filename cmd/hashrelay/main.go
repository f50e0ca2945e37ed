// Command hashrelay is the HashRelay daemon: a Stratum V1 proxy that holds an ASIC
// fleet's connections, checks every share, and forwards work to upstream pools.
//
//	hashrelay -listen 127.0.0.1:3333 -upstream stratum+tcp://USER[:PASS]@HOST:PORT [-upstream …] -http 127.0.0.1:8080
//
// Every flag is also read from HASHRELAY_<FLAG> (upper case, dashes as underscores)
// and from a TOML file (-config), the command line first.
package main

import (
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
		fmt.Fprintln(stderr, "hashrelay:", err)
		return 2
	}
	if err := srv.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start failed")
		return 1
	}
	<-ctx.Done()
	stop()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.cfg.ShutdownTimeout+time.Second)
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
