package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rs/zerolog"
)

// runDemo starts the proxy with an in-process simulated pool and miners.
func runDemo(ctx context.Context, o *options, log zerolog.Logger, out io.Writer) int {
	fmt.Fprintln(out, "the demo is not built yet")
	return 1
}
