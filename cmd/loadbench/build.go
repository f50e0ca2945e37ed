package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildTimeout bounds go build of the three commands.
const buildTimeout = 5 * time.Minute

// binaries are the paths of the three programs loadbench runs.
type binaries struct {
	poolsim, hashrelay, minersim string
}

// binariesIn names the programs in dir and checks that each is there and executable.
func binariesIn(dir string) (binaries, error) {
	b := binaries{
		poolsim:   filepath.Join(dir, "poolsim"),
		hashrelay: filepath.Join(dir, "hashrelay"),
		minersim:  filepath.Join(dir, "minersim"),
	}
	for _, p := range []string{b.poolsim, b.hashrelay, b.minersim} {
		fi, err := os.Stat(p)
		if err != nil {
			return b, fmt.Errorf("bin: %v", err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return b, fmt.Errorf("bin: %s is not an executable file", p)
		}
	}
	return b, nil
}

// findModuleRoot walks up from dir to the first directory holding go.mod.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or any directory above it: run loadbench inside the hashrelay module, or give -bin", dir)
		}
		d = parent
	}
}

// buildCommands are the packages loadbench builds, relative to the module root.
var buildCommands = []string{"./cmd/poolsim", "./cmd/hashrelay", "./cmd/minersim"}

// buildBinaries builds the commands pkgs from the module root into dir and returns
// the command line used.
func buildBinaries(ctx context.Context, root, dir string, pkgs []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	line := "(cd " + shellQuote(root) + " && " + shellLine(append([]string{"go"}, args...)) + ")"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return line, fmt.Errorf("%s: timed out after %v", line, buildTimeout)
	}
	if err != nil {
		return line, fmt.Errorf("%s: %v\n%s", line, err, strings.TrimSpace(string(out)))
	}
	return line, nil
}
