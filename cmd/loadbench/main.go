// Command loadbench measures hashrelay under load. It starts poolsim, hashrelay and
// minersim as separate processes, drives a named scenario, samples the server's CPU
// and resident memory from /proc, and prints a Markdown table (or JSON). Every
// scenario runs twice: through the proxy (minersim → hashrelay → poolsim) and
// direct (minersim → poolsim), the baseline column.
//
//	loadbench -scenario hold|steady|flood|newblock|failover|all [-miners N] [-duration D] [-ramp D] [-bin DIR] [-json] [-direct=false] [-out FILE]
//
// Without -bin it builds the three commands from the module it is run in. Every
// flag is also read from LOADBENCH_<FLAG>. The children get loadbench's environment
// without POOLSIM_*, HASHRELAY_* and MINERSIM_*, so they run as their printed
// command lines say. Each child runs in its own process group, stopped on any exit
// (SIGINT and SIGTERM included).
//
// Exit codes: 0 when every run completed (whether or not the targets were met), 1
// when a run failed or was interrupted (what was measured is still printed), 2 for
// an invalid setting.
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
	return flagenv.Run("loadbench", args, getenv, stderr, parseSettings,
		func(ctx context.Context, s *settings) error { return execute(ctx, s, stdout, stderr) })
}
