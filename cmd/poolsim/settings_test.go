package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

func TestParseSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	o, err := parseSettings(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.pool.Addr != defaultListen || o.admin != defaultAdmin || o.report != defaultReport || o.pool.Difficulty != 1 ||
		o.pool.VersionMask != stratumtest.DefaultVersionMask || o.pool.NBits != stratumtest.DefaultNBits || o.pool.NoVersionRolling {
		t.Errorf("defaults: got %+v", o)
	}

	o, err = parseSettings([]string{"-listen", "127.0.0.1:0", "-difficulty", "0.001", "-extranonce1-size", "2",
		"-extranonce2-size", "4", "-version-mask", "0x00ffe000", "-job-interval", "30s", "-new-block-interval", "1m",
		"-reject-fraction", "0.25", "-reject-form", "ckpool", "-nbits", "207fffff", "-admin", "off", "-report", "0", "-json"},
		env(map[string]string{"POOLSIM_DIFFICULTY": "5"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.pool
	if c.Addr != "127.0.0.1:0" || c.Difficulty != 0.001 || c.Extranonce1Size != 2 || c.Extranonce2Size != 4 ||
		c.VersionMask != 0x00ffe000 || c.JobInterval != 30*time.Second || o.newBlockInterval != time.Minute ||
		o.rejectFraction != 0.25 || c.RejectForm != stratumtest.RejectCKPool || c.NBits != stratumtest.RegtestNBits ||
		o.admin != "" || o.report != 0 || !o.json {
		t.Errorf("flags (command line over env): got %+v", o)
	}

	o, err = parseSettings(nil, env(map[string]string{"POOLSIM_LISTEN": "127.0.0.1:9", "POOLSIM_VERSION_MASK": "0",
		"POOLSIM_REJECT_FORM": "string", "POOLSIM_JSON": "true", "POOLSIM_NEW_BLOCK_INTERVAL": "2s"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.pool.Addr != "127.0.0.1:9" || !o.pool.NoVersionRolling || o.pool.RejectForm != stratumtest.RejectString ||
		!o.json || o.newBlockInterval != 2*time.Second {
		t.Errorf("env: got %+v", o)
	}
	if o, _ := parseSettings([]string{"-no-version-rolling"}, env(nil), io.Discard); o == nil || !o.pool.NoVersionRolling {
		t.Errorf("-no-version-rolling: got %+v", o)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	f := func(args []string, envs map[string]string, want string) {
		t.Helper()
		_, err := parseSettings(args, func(k string) string { return envs[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v %v: got error %v; want one containing %q", args, envs, err, want)
		}
	}
	f([]string{"-difficulty", "0"}, nil, "difficulty: 0")
	f([]string{"-difficulty", "x"}, nil, "-difficulty")
	f(nil, map[string]string{"POOLSIM_DIFFICULTY": "x"}, `POOLSIM_DIFFICULTY="x": want a number`)
	f(nil, map[string]string{"POOLSIM_REPORT": "5"}, `POOLSIM_REPORT="5": want a duration`)
	f(nil, map[string]string{"POOLSIM_VERSION_MASK": "zz"}, `POOLSIM_VERSION_MASK="zz": want up to 8 hex digits`)
	f([]string{"-reject-form", "json"}, nil, "want array, string or ckpool")
	f([]string{"-reject-fraction", "1.5"}, nil, "reject-fraction: 1.5")
	f([]string{"-extranonce1-size", "0"}, nil, "extranonce1-size: 0")
	f([]string{"-extranonce2-size", "9"}, nil, "extranonce2-size: 9")
	f([]string{"-nbits", "0"}, nil, "nbits: 0")
	f([]string{"-job-interval", "-1s"}, nil, "job-interval")
	f([]string{"-new-block-interval", "-1s"}, nil, "new-block-interval")
	f([]string{"-report", "-1s"}, nil, "report")
	f([]string{"-listen", ""}, nil, "listen: empty")
	f([]string{"extra"}, nil, `unexpected argument "extra"`)
}
