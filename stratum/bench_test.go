package stratum_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// benchCoinbaseSize is the coinbase length the share-check target is stated for.
const benchCoinbaseSize = 200

// benchJob returns a job with a 200-byte coinbase (around 4+8 bytes of extranonce)
// and a branch of the given length, and a submit line for it.
func benchJob(b testing.TB, branch int) (*stratum.Job, []byte) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(branch)))
	randBytes := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	j := stratum.Job{
		ID:      "6798a1",
		Coinb1:  randBytes(90),
		Coinb2:  randBytes(benchCoinbaseSize - 90 - 4 - 8),
		Version: 0x20000000, NBits: 0x17029a8a, NTime: 0x679ac169,
	}
	copy(j.PrevHash[:], randBytes(32))
	for i := 0; i < branch; i++ {
		var h stratum.Hash
		copy(h[:], randBytes(32))
		j.Branch = append(j.Branch, h)
	}
	job, err := stratum.NewJob(j)
	if err != nil {
		b.Fatal(err)
	}
	submit := []byte(`{"id":4,"method":"mining.submit","params":["proxytest.worker1","6798a1","b660000000000000","679ac169","ff05fb02","0e596000"]}`)
	return job, submit
}

var benchBranches = []int{0, 6, 12}

// BenchmarkShareCheck measures a full share check: build the coinbase, sha256d it,
// fold the branch, write the header, sha256d it, compare with the target.
// Compare with BenchmarkShareCheckFloor, the hashing alone, in the same run.
func BenchmarkShareCheck(b *testing.B) {
	for _, n := range benchBranches {
		b.Run(fmt.Sprintf("branch=%d", n), func(b *testing.B) {
			job, line := benchJob(b, n)
			var d stratum.Decoder
			m, err := d.Decode(line)
			if err != nil {
				b.Fatal(err)
			}
			var s stratum.Submit
			if err := m.Submit(&s); err != nil {
				b.Fatal(err)
			}
			target := stratum.Diff1Target()
			p := stratum.CheckParams{Extranonce1: []byte{0xf1, 0xad, 0x9a, 0x67}, Extranonce2Size: 8, VersionMask: 0x1fffe000, ShareTarget: &target}
			var c stratum.Checker
			b.ReportAllocs()
			var r stratum.Result
			for b.Loop() {
				r = c.Check(job, &s, &p)
			}
			if r.Verdict != stratum.VerdictLowDifficulty {
				b.Fatalf("verdict %v; want low_difficulty for a random job", r.Verdict)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shares/s")
		})
	}
}

// BenchmarkShareCheckFloor is the hashing a share check cannot avoid with
// crypto/sha256: sha256d of the coinbase, one sha256d of 64 bytes per branch level,
// sha256d of the 80-byte header.
func BenchmarkShareCheckFloor(b *testing.B) {
	for _, n := range benchBranches {
		b.Run(fmt.Sprintf("branch=%d", n), func(b *testing.B) {
			var coinbase [benchCoinbaseSize]byte
			var pair [64]byte
			var header [80]byte
			b.ReportAllocs()
			for b.Loop() {
				h := sha256.Sum256(coinbase[:])
				h = sha256.Sum256(h[:])
				for i := 0; i < n; i++ {
					copy(pair[:], h[:])
					h = sha256.Sum256(pair[:])
					h = sha256.Sum256(h[:])
				}
				copy(header[36:], h[:])
				h = sha256.Sum256(header[:])
				h = sha256.Sum256(h[:])
				header[0] = h[0]
			}
		})
	}
}

// BenchmarkDecodeSubmit decodes a mining.submit line and its params.
func BenchmarkDecodeSubmit(b *testing.B) {
	_, line := benchJob(b, 0)
	var d stratum.Decoder
	var s stratum.Submit
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		m, err := d.Decode(line)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Submit(&s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWindowCheck is the share path a session runs: job lookup, check, and
// duplicate detection, on a job already holding 32 shares.
func BenchmarkWindowCheck(b *testing.B) {
	job, line := benchJob(b, 12)
	w := stratum.NewJobWindow(8)
	target := stratum.Diff1Target()
	w.Add(job, target)
	var d stratum.Decoder
	m, _ := d.Decode(line)
	var s stratum.Submit
	if err := m.Submit(&s); err != nil {
		b.Fatal(err)
	}
	var c stratum.Checker
	p := stratum.CheckParams{Extranonce1: []byte{1, 2, 3, 4}, Extranonce2Size: 8, VersionMask: 0x1fffe000}
	b.ReportAllocs()
	for b.Loop() {
		w.Check(&c, &s, &p)
	}
}

// BenchmarkAppendNotify serializes a 12-level job once, as a broadcast does.
func BenchmarkAppendNotify(b *testing.B) {
	job, _ := benchJob(b, 12)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = stratum.AppendNotify(buf[:0], job)
	}
	b.SetBytes(int64(len(buf)))
}
