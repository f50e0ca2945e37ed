package main

import (
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// waitTimeout bounds every wait in these tests; a healthy run needs a fraction.
const waitTimeout = 8 * time.Second

// tinyDifficulty gives a share about every 430 hashes.
const tinyDifficulty = 1e-7

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	stratumtest.WaitFor(t, waitTimeout, what, cond)
}
