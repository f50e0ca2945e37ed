package main

import (
	"debug/buildinfo"
	"os"
	"runtime"
	"strings"
)

// machine describes the host, printed above the results.
type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"` // logical CPUs loadbench may run on
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"` // hashrelay's toolchain
}

// describeMachine reads /proc; relayBin gives the Go version hashrelay was built with.
func describeMachine(relayBin string) machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Kernel: "unknown", GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if bi, err := buildinfo.ReadFile(relayBin); err == nil {
		m.GoVersion = bi.GoVersion
	}
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo (x86), else its "Hardware" or
// "CPU part" line (some ARM kernels), else "unknown".
func cpuModel(cpuinfo string) string {
	for _, key := range []string{"model name", "Hardware", "CPU part"} {
		for line := range strings.Lines(cpuinfo) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}
