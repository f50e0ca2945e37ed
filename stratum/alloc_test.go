//go:build !race

package stratum_test

import (
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// The hot paths allocate nothing once warm: decoding a submit, checking a share and
// encoding the reply. (The race detector allocates on its own, hence the build tag.)

func allocs(t *testing.T, name string, f func()) {
	t.Helper()
	f() // warm up buffers
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run; want 0", name, n)
	}
}

func TestZeroAllocs(t *testing.T) {
	job, line := benchJob(t, 12)
	var d stratum.Decoder
	var s stratum.Submit
	allocs(t, "decode submit", func() {
		m, err := d.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Submit(&s); err != nil {
			t.Fatal(err)
		}
	})

	target := stratum.Diff1Target()
	p := stratum.CheckParams{Extranonce1: []byte{1, 2, 3, 4}, Extranonce2Size: 8, VersionMask: 0x1fffe000, ShareTarget: &target, UpstreamTarget: &target}
	var c stratum.Checker
	allocs(t, "check share", func() { c.Check(job, &s, &p) })

	w := stratum.NewJobWindow(4)
	w.Add(job, target)
	allocs(t, "window check", func() { w.Check(&c, &s, &p) })

	id := []byte(`"auth"`)
	buf := make([]byte, 0, 4096)
	allocs(t, "encode accept", func() { buf = stratum.AppendBool(buf[:0], id, true) })
	allocs(t, "encode reject", func() { buf = stratum.AppendError(buf[:0], id, stratum.VerdictLowDifficulty.Err()) })
	allocs(t, "encode set_difficulty", func() { buf = stratum.AppendSetDifficulty(buf[:0], 0.001) })
	allocs(t, "encode notify", func() { buf = stratum.AppendNotify(buf[:0], job) })
	allocs(t, "encode submit", func() { buf = stratum.AppendSubmit(buf[:0], 7, &s) })

	var cfg stratum.ConfigureRequest
	cfgLine := []byte(`{"id":1,"method":"mining.configure","params":[["version-rolling","x-ext"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}`)
	allocs(t, "decode configure", func() {
		m, err := d.Decode(cfgLine)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Configure(&cfg); err != nil {
			t.Fatal(err)
		}
	})
	res := stratum.ConfigureResult{Asked: stratum.ExtVersionRolling, Granted: stratum.ExtVersionRolling, VersionMask: 0x1fffe000, Unknown: cfg.Unknown}
	allocs(t, "encode configure result", func() { buf = stratum.AppendConfigureResult(buf[:0], id, &res) })
}
