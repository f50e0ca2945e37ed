// Command poolsim is a simulated Stratum V1 pool (stratumtest.Pool) as a command,
// for load tests and demos: it checks every share for real and counts the verdicts.
//
//	poolsim -listen 127.0.0.1:3334 -difficulty 0.001 [-admin 127.0.0.1:3335] [-json]
//
// Every flag is also read from POOLSIM_<FLAG> (upper case, dashes as underscores),
// the command line first. A small HTTP admin endpoint (-admin, loopback by default)
// lets a script inject faults (POST /fault/…) and read GET /stats; see admin.go.
// -faults schedules the same faults from the command line, as comma-separated
// AT:FAULT[?QUERY] entries with AT a duration from start (see schedule.go):
//
//	-faults "10s:drop,20s:stall?for=5s,30s:reject?fraction=0.1,40s:forget-jobs"
//
// Each scheduled fault is logged on stderr with the time it fired.
//
// Its first line on stderr is "poolsim listening on stratum+tcp://ADDR, admin
// http://ADDR" with the addresses actually bound. On SIGINT or SIGTERM it prints the
// final report (text on stderr; JSON on stdout with -json) and exits 0. Exit codes:
// 1 when the pool or the admin endpoint cannot start, 2 for an invalid setting.
package main

import (
	"context"
	"io"
	"os"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return flagenv.Run("poolsim", args, getenv, stderr, parseSettings,
		func(ctx context.Context, o *options) error { return serve(ctx, o, stdout, stderr) })
}
