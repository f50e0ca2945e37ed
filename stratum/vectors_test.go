package stratum_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// The vectors are real mainnet blocks taken apart into Stratum messages (see
// testdata/share-vectors.json at the repository root): reassembling each one through
// the public API must give the real header and block hash byte for byte.

type vectorFile struct {
	Vectors   []vector `json:"vectors"`
	Reference []vector `json:"reference_examples"`
}

type vector struct {
	Name      string `json:"name"`
	Subscribe struct {
		Extranonce1     string `json:"extranonce1"`
		Extranonce2Size int    `json:"extranonce2_size"`
	} `json:"subscribe"`
	Configure *struct {
		Request        json.RawMessage `json:"request"`
		ResponseResult json.RawMessage `json:"response_result"`
		NegotiatedMask string          `json:"negotiated_mask"`
	} `json:"configure"`
	NotifyParams []any    `json:"notify_params"`
	SubmitParams []string `json:"submit_params"`
	Expected     expected `json:"expected"`
	Invalid      []struct {
		Name         string   `json:"name"`
		SubmitParams []string `json:"submit_params"`
		NotifyParams []any    `json:"notify_params"`
		Extranonce1  string   `json:"extranonce1"`
		Expected     expected `json:"expected"`
	} `json:"invalid_variants"`
	VersionBitsForms []map[string]any `json:"version_bits_forms"`
	ProxySplit       *struct {
		Prefix     string `json:"proxy_prefix"`
		Downstream struct {
			Extranonce1     string `json:"extranonce1"`
			Extranonce2Size int    `json:"extranonce2_size"`
		} `json:"downstream_subscribe"`
		DownstreamSubmit []string `json:"downstream_submit_params"`
		UpstreamSubmit   []string `json:"upstream_submit_params"`
		BlockHash        string   `json:"expected_block_hash"`
	} `json:"proxy_extranonce_split"`
}

type expected struct {
	CoinbaseHex        string  `json:"coinbase_hex"`
	MerkleRoot         string  `json:"merkle_root"`
	PrevhashHeaderHex  string  `json:"prevhash_header_hex"`
	HeaderHex          string  `json:"header_hex"`
	BlockHash          string  `json:"block_hash"`
	NetworkTargetHex   string  `json:"network_target_hex"`
	MeetsNetworkTarget bool    `json:"meets_network_target"`
	HashDifficulty     float64 `json:"hash_difficulty"`
	HashDifficultyInt  string  `json:"hash_difficulty_floor"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("../testdata/share-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 4 || len(f.Reference) < 1 {
		t.Fatalf("got %d vectors and %d reference examples; want at least 4 and 1", len(f.Vectors), len(f.Reference))
	}
	return append(f.Vectors, f.Reference...)
}

// line renders a Stratum line as a pool or miner would send it.
func line(t testing.TB, id any, method string, params any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJob(t testing.TB, params []any) *stratum.Job {
	t.Helper()
	var d stratum.Decoder
	m, err := d.Decode(line(t, nil, "mining.notify", params))
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != stratum.MethodNotify || m.Kind != stratum.KindNotification {
		t.Fatalf("got method %v kind %v; want mining.notify notification", m.Method, m.Kind)
	}
	j, err := m.Notify()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// checkSubmit decodes a submit line and checks it on job j, returning the result and
// the header hashed.
func checkSubmit(t testing.TB, j *stratum.Job, en1 string, en2Size int, mask uint32, diff float64, params []string) (stratum.Result, string) {
	t.Helper()
	var d stratum.Decoder
	m, err := d.Decode(line(t, 4, "mining.submit", params))
	if err != nil {
		t.Fatal(err)
	}
	var s stratum.Submit
	if err := m.Submit(&s); err != nil {
		t.Fatal(err)
	}
	target, err := stratum.TargetFromDifficulty(diff)
	if err != nil {
		t.Fatal(err)
	}
	e1, _ := hex.DecodeString(en1)
	var c stratum.Checker
	r := c.Check(j, &s, &stratum.CheckParams{Extranonce1: e1, Extranonce2Size: en2Size, VersionMask: mask, ShareTarget: &target})
	return r, hex.EncodeToString(c.Header()[:])
}

func vectorMask(t *testing.T, v vector) uint32 {
	if v.Configure == nil {
		return 0
	}
	m, err := strconv.ParseUint(v.Configure.NegotiatedMask, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(m)
}

func TestVectorsReproduceBlocks(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			j := decodeJob(t, v.NotifyParams)
			if got := hex.EncodeToString(j.PrevHash[:]); v.Expected.PrevhashHeaderHex != "" && got != v.Expected.PrevhashHeaderHex {
				t.Errorf("prevhash in header order = %s; want %s", got, v.Expected.PrevhashHeaderHex)
			}
			if v.Expected.NetworkTargetHex != "" && j.NetworkTarget.String() != v.Expected.NetworkTargetHex {
				t.Errorf("network target = %s; want %s", j.NetworkTarget, v.Expected.NetworkTargetHex)
			}
			// Judged at difficulty 1, every real block is an accepted share and a block.
			r, header := checkSubmit(t, j, v.Subscribe.Extranonce1, v.Subscribe.Extranonce2Size, vectorMask(t, v), 1, v.SubmitParams)
			if header != v.Expected.HeaderHex {
				t.Errorf("header = %s; want %s", header, v.Expected.HeaderHex)
			}
			if r.Hash.String() != v.Expected.BlockHash {
				t.Errorf("hash = %s; want %s", r.Hash, v.Expected.BlockHash)
			}
			if r.Verdict != stratum.VerdictAccepted || !r.Block {
				t.Errorf("verdict %v block %v; want accepted block", r.Verdict, r.Block)
			}
			if v.Expected.HashDifficulty != 0 && !within(r.Difficulty, v.Expected.HashDifficulty, 1e-9) {
				t.Errorf("share difficulty = %g; want %g", r.Difficulty, v.Expected.HashDifficulty)
			}
			// The share is worth exactly its floored difficulty: accepted there, and
			// rejected one difficulty unit above.
			if fl, err := strconv.ParseFloat(v.Expected.HashDifficultyInt, 64); err == nil && fl > 0 {
				if r, _ := checkSubmit(t, j, v.Subscribe.Extranonce1, v.Subscribe.Extranonce2Size, vectorMask(t, v), fl, v.SubmitParams); r.Verdict != stratum.VerdictAccepted {
					t.Errorf("at difficulty %v: verdict %v; want accepted", fl, r.Verdict)
				}
				if r, _ := checkSubmit(t, j, v.Subscribe.Extranonce1, v.Subscribe.Extranonce2Size, vectorMask(t, v), fl+1, v.SubmitParams); r.Verdict != stratum.VerdictLowDifficulty {
					t.Errorf("at difficulty %v: verdict %v; want low_difficulty", fl+1, r.Verdict)
				}
			}
		})
	}
}

func within(got, want, rel float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= rel*want
}

func TestVectorsInvalidVariants(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, iv := range v.Invalid {
			t.Run(v.Name+"/"+iv.Name, func(t *testing.T) {
				j := decodeJob(t, v.NotifyParams)
				if iv.NotifyParams != nil {
					j = decodeJob(t, iv.NotifyParams)
				}
				en1 := v.Subscribe.Extranonce1
				if iv.Extranonce1 != "" {
					en1 = iv.Extranonce1
				}
				r, header := checkSubmit(t, j, en1, v.Subscribe.Extranonce2Size, vectorMask(t, v), 1, iv.SubmitParams)
				if header != iv.Expected.HeaderHex {
					t.Errorf("header = %s; want %s", header, iv.Expected.HeaderHex)
				}
				if r.Hash.String() != iv.Expected.BlockHash {
					t.Errorf("hash = %s; want %s", r.Hash, iv.Expected.BlockHash)
				}
				if r.Verdict != stratum.VerdictLowDifficulty || r.Block {
					t.Errorf("verdict %v block %v; want low_difficulty, no block", r.Verdict, r.Block)
				}
				if !within(r.Difficulty, iv.Expected.HashDifficulty, 1e-9) {
					t.Errorf("share difficulty = %g; want %g", r.Difficulty, iv.Expected.HashDifficulty)
				}
			})
		}
	}
}

// TestVectorsStaleJob: a job built on an old tip is void once a clean job replaces
// it, so a share on it is answered 21 (job not found) by job id, before any hashing.
func TestVectorsStaleJob(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, iv := range v.Invalid {
			if iv.NotifyParams == nil {
				continue
			}
			t.Run(v.Name, func(t *testing.T) {
				stale := decodeJob(t, iv.NotifyParams)
				params := append([]any(nil), v.NotifyParams...)
				params[0] = "next"
				params[8] = true
				fresh := decodeJob(t, params)
				w := stratum.NewJobWindow(8)
				w.Add(stale, stratum.Diff1Target())
				w.Add(fresh, stratum.Diff1Target())
				var d stratum.Decoder
				m, _ := d.Decode(line(t, 4, "mining.submit", iv.SubmitParams))
				var s stratum.Submit
				if err := m.Submit(&s); err != nil {
					t.Fatal(err)
				}
				var c stratum.Checker
				r, _ := w.Check(&c, &s, &stratum.CheckParams{Extranonce2Size: v.Subscribe.Extranonce2Size, VersionMask: vectorMask(t, v)})
				if r.Verdict != stratum.VerdictUnknownJob || r.Verdict.Err().Code != 21 {
					t.Errorf("verdict %v (code %d); want unknown_job (21)", r.Verdict, r.Verdict.Err().Code)
				}
			})
		}
	}
}

func TestVectorsVersionBitsForms(t *testing.T) {
	for _, v := range loadVectors(t) {
		if len(v.VersionBitsForms) == 0 {
			continue
		}
		j := decodeJob(t, v.NotifyParams)
		mask := vectorMask(t, v)
		for _, f := range v.VersionBitsForms {
			form, bits := f["form"].(string), f["version_bits"].(string)
			t.Run(form, func(t *testing.T) {
				params := append([]string(nil), v.SubmitParams...)
				params[5] = bits
				r, _ := checkSubmit(t, j, v.Subscribe.Extranonce1, v.Subscribe.Extranonce2Size, mask, 1, params)
				if f["passes_bip310_check"].(bool) {
					want, _ := strconv.ParseUint(f["bip310_version"].(string), 16, 32)
					if r.Version != uint32(want) {
						t.Errorf("version = %08x; want %08x", r.Version, want)
					}
					if r.Verdict != stratum.VerdictAccepted || r.Block != f["bip310_version_is_block"].(bool) {
						t.Errorf("verdict %v block %v; want accepted, block %v", r.Verdict, r.Block, f["bip310_version_is_block"])
					}
				} else if r.Verdict != stratum.VerdictVersionBits {
					t.Errorf("verdict %v; want version_bits (bits outside the mask are rejected)", r.Verdict)
				}
			})
		}
	}
}

func TestVectorsConfigure(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Configure == nil {
			continue
		}
		var d stratum.Decoder
		m, err := d.Decode(v.Configure.Request)
		if err != nil || m.Method != stratum.MethodConfigure {
			t.Fatalf("decode configure: %v, method %v", err, m.Method)
		}
		var req stratum.ConfigureRequest
		if err := m.Configure(&req); err != nil {
			t.Fatal(err)
		}
		serverMask := uint32(0x1fffe000)
		res := stratum.ConfigureResult{Asked: req.Extensions, Granted: stratum.ExtVersionRolling, VersionMask: req.VersionMask & serverMask}
		out := stratum.AppendConfigureResult(nil, m.ID, &res)
		var got struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if !jsonEqual(t, got.Result, v.Configure.ResponseResult) || got.ID != 1 {
			t.Errorf("configure reply %s; want result %s", out, v.Configure.ResponseResult)
		}
		// The reply decodes back to the negotiated mask.
		m, err = d.Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		cr, err := m.ConfigureResult()
		if err != nil || cr.Granted&stratum.ExtVersionRolling == 0 || cr.VersionMask != vectorMask(t, v) {
			t.Errorf("decoded configure result %+v, %v; want mask %s granted", cr, err, v.Configure.NegotiatedMask)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestVectorsProxySplit: a proxy that splits the pool's extranonce2 space (split or
// folded form) gets the same block hash, and sends the pool the right extranonce2.
func TestVectorsProxySplit(t *testing.T) {
	for _, v := range loadVectors(t) {
		ps := v.ProxySplit
		if ps == nil {
			continue
		}
		j := decodeJob(t, v.NotifyParams)
		mask := vectorMask(t, v)
		en1, _ := hex.DecodeString(v.Subscribe.Extranonce1)
		layout, err := stratum.NewLayout(en1, v.Subscribe.Extranonce2Size, 2)
		if err != nil {
			t.Fatal(err)
		}
		prefix, _ := hex.DecodeString(ps.Prefix)
		if got := hex.EncodeToString(layout.AppendSplitExtranonce1(nil, prefix)); got != ps.Downstream.Extranonce1 {
			t.Errorf("split extranonce1 = %s; want %s", got, ps.Downstream.Extranonce1)
		}
		if layout.MinerExtranonce2Size() != ps.Downstream.Extranonce2Size {
			t.Errorf("miner extranonce2 size = %d; want %d", layout.MinerExtranonce2Size(), ps.Downstream.Extranonce2Size)
		}

		// Split form: the miner hashes with extranonce1 = upstream || prefix.
		r, _ := checkSubmit(t, j, ps.Downstream.Extranonce1, ps.Downstream.Extranonce2Size, mask, 1, ps.DownstreamSubmit)
		if r.Hash.String() != ps.BlockHash || !r.Block {
			t.Errorf("split form: hash %s block %v; want %s, a block", r.Hash, r.Block, ps.BlockHash)
		}
		// Folded form: coinb1 carries the upstream extranonce1; extranonce1 is the prefix.
		r, _ = checkSubmit(t, layout.FoldJob(j), ps.Prefix, ps.Downstream.Extranonce2Size, mask, 1, ps.DownstreamSubmit)
		if r.Hash.String() != ps.BlockHash || !r.Block {
			t.Errorf("folded form: hash %s block %v; want %s, a block", r.Hash, r.Block, ps.BlockHash)
		}

		// The submit the pool receives.
		var d stratum.Decoder
		m, _ := d.Decode(line(t, 7, "mining.submit", ps.DownstreamSubmit))
		var s stratum.Submit
		if err := m.Submit(&s); err != nil {
			t.Fatal(err)
		}
		up := s
		up.Extranonce2 = layout.AppendUpstreamExtranonce2(nil, prefix, s.Extranonce2)
		out := stratum.AppendSubmit(nil, 99, &up)
		var got struct {
			Params []string `json:"params"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if len(got.Params) != len(ps.UpstreamSubmit) {
			t.Fatalf("upstream submit %s; want params %q", out, ps.UpstreamSubmit)
		}
		for i := range got.Params {
			if got.Params[i] != ps.UpstreamSubmit[i] {
				t.Errorf("upstream submit param %d = %q; want %q", i, got.Params[i], ps.UpstreamSubmit[i])
			}
		}
		// And the pool, checking that submit on the original job, sees the block.
		r, _ = checkSubmit(t, j, v.Subscribe.Extranonce1, v.Subscribe.Extranonce2Size, mask, 1, got.Params)
		if r.Hash.String() != ps.BlockHash {
			t.Errorf("pool side: hash %s; want %s", r.Hash, ps.BlockHash)
		}
	}
}
