package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindModuleRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := findModuleRoot(deep); err == nil || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("without go.mod: %v; want a clear error", err)
	}
	if err := os.WriteFile(filepath.Join(root, "a", "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := findModuleRoot(deep)
	if err != nil || got != filepath.Join(root, "a") {
		t.Errorf("findModuleRoot(%s) = %s, %v; want %s", deep, got, err, filepath.Join(root, "a"))
	}
	if got, err := findModuleRoot(filepath.Join(root, "a")); err != nil || got != filepath.Join(root, "a") {
		t.Errorf("from the root itself: %s, %v", got, err)
	}

	// This package's own module.
	wd, _ := os.Getwd()
	got, err = findModuleRoot(wd)
	if err != nil || got != filepath.Dir(filepath.Dir(wd)) {
		t.Errorf("from %s: %s, %v; want the module two levels up", wd, got, err)
	}
}

func TestBinariesIn(t *testing.T) {
	dir := t.TempDir()
	if _, err := binariesIn(dir); err == nil {
		t.Error("empty directory: no error")
	}
	for _, name := range []string{"poolsim", "hashrelay"} {
		os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "minersim"), []byte("#!/bin/sh\n"), 0o644)
	if _, err := binariesIn(dir); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("minersim not executable: %v", err)
	}
	os.Chmod(filepath.Join(dir, "minersim"), 0o755)
	if b, err := binariesIn(dir); err != nil || b.minersim != filepath.Join(dir, "minersim") {
		t.Errorf("binariesIn = %+v, %v", b, err)
	}
}
