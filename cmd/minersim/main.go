// Command minersim simulates many Stratum V1 miners (stratumtest.Miner) against
// a pool or a proxy, for load tests: it ramps their connections up, mines at a
// chosen share rate, can mix in bad behaviour, and reports connections, shares,
// reply and job latencies, bytes and errors.
//
//	minersim -url stratum+tcp://HOST:PORT[,stratum+tcp://BACKUP:PORT…] -miners N -duration 30s [-json]
//
// Every flag is also read from MINERSIM_<FLAG> (upper case, dashes as
// underscores), the command line first. The report and its JSON form are a
// contract other tools parse (specs/minersim.md); see report.go.
//
// Above 5000 miners (or with -procs) the miners run in worker processes, copies
// of this binary, so that none nears the open-files cap; see workers.go. Progress
// goes to stderr, the final report to stdout. SIGINT or SIGTERM ends the run
// early and still prints the report. Exit codes: 0 when the run completed, 2
// for an invalid setting (or more miners per process than open files allow), 1
// when the run failed (a worker process died).
package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return flagenv.Run("minersim", args, getenv, stderr, parseSettings, func(ctx context.Context, o *options) error {
		if o.slots > 0 {
			return serveWorker(ctx, o, os.Stdin, stdout)
		}
		err := simulate(ctx, o, args, stdout, stderr)
		if limit := (*limitError)(nil); errors.As(err, &limit) {
			return flagenv.SettingError(err) // exit 2: as a setting, it cannot work here
		}
		return err
	})
}
