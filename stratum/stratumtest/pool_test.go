package stratumtest_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestPoolSessionFlow: the pool answers a pipelined handshake in order, sends
// set_difficulty and a clean notify right after the subscribe reply (before the
// authorize reply), and answers the other methods as documented.
func TestPoolSessionFlow(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{
		Difficulty: 0.5,
		Authorize:  func(user, _ string) bool { return user != "intruder" },
	})
	if got, want := p.URL(), "stratum+tcp://"+p.Addr(); got != want {
		t.Errorf("URL() = %q; want %q", got, want)
	}
	c := dialRaw(t, p.Addr())

	// A submit before subscribing is refused with 25.
	c.send(stratum.AppendSubmit(nil, 9, &stratum.Submit{Worker: []byte("w"), JobID: []byte("1"), Extranonce2: []byte("00")}))
	if rej := c.reply(9).Reject(); rej.Code != stratum.ErrNotSubscribed.Code {
		t.Errorf("submit before subscribe: code %d; want %d", rej.Code, stratum.ErrNotSubscribed.Code)
	}

	// Pipelined, as bfgminer does.
	c.send(stratum.AppendSubscribe(nil, 1, "raw/1.0", ""))
	c.send(stratum.AppendAuthorize(nil, 2, "alice", "x"))
	c.send(stratum.AppendExtranonceSubscribe(nil, 3))
	c.send(stratum.AppendSuggestDifficulty(nil, 4, 64))
	c.send(stratum.AppendAuthorize(nil, 5, "intruder", "x"))
	c.send([]byte(`{"id":6,"method":"mining.frobnicate","params":[]}` + "\n"))
	c.send([]byte(`{"id":"tx","method":"mining.get_transactions","params":["1"]}` + "\n"))

	sub, err := c.reply(1).SubscribeResult()
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Extranonce1) != 4 || sub.Extranonce2Size != 8 || sub.SessionID == "" {
		t.Errorf("subscribe result: extranonce1 %x, size %d, session %q; want 4 bytes, 8, an id", sub.Extranonce1, sub.Extranonce2Size, sub.SessionID)
	}
	if ok, _ := c.reply(2).BoolResult(); !ok {
		t.Error("authorize alice: want true")
	}
	wantSeen := []string{"reply 9", "reply 1", "mining.set_difficulty", "mining.notify", "reply 2"}
	if !slices.Equal(c.seen, wantSeen) {
		t.Errorf("messages in order %q; want %q", c.seen, wantSeen)
	}
	if c.difficulty != 0.5 || c.job == nil || !c.job.Clean {
		t.Errorf("difficulty %v, job %+v; want 0.5 and a clean job", c.difficulty, c.job)
	}
	if ok, _ := c.reply(3).BoolResult(); !ok {
		t.Error("extranonce.subscribe: want true")
	}
	if ok, _ := c.reply(4).BoolResult(); !ok {
		t.Error("suggest_difficulty: want true")
	}
	if ok, isBool := c.reply(5).BoolResult(); ok || !isBool {
		t.Error("authorize intruder: want false")
	}
	if rej := c.reply(6).Reject(); rej.Code != -32601 {
		t.Errorf("unknown method: code %d; want -32601", rej.Code)
	}
	m := c.next()
	if string(m.ID) != `"tx"` || m.Kind != stratum.KindResponse {
		t.Errorf("get_transactions: got id %s kind %v; want an answer to \"tx\"", m.ID, m.Kind)
	}

	// A worker that was refused cannot submit.
	c.send(stratum.AppendSubmit(nil, 7, &stratum.Submit{Worker: []byte("intruder"), JobID: []byte(c.job.ID), Extranonce2: []byte("0000000000000000"), NTime: c.job.NTime}))
	if rej := c.reply(7).Reject(); rej.Code != stratum.ErrUnauthorized.Code {
		t.Errorf("unauthorized submit: code %d; want 24", rej.Code)
	}

	s := sessionOf(t, p, "alice")
	if s.SuggestedDifficulty != 64 || !s.ExtranonceSubscribe || s.UserAgent != "raw/1.0" || s.ID != sub.SessionID {
		t.Errorf("session info %+v; want suggested 64, extranonce subscribed, agent raw/1.0, id %q", s, sub.SessionID)
	}
	st := p.Stats()
	if st.Connections != 1 || st.Subscribes != 1 || st.Authorizes != 1 || st.AuthorizeFailures != 1 || st.UnknownMethods != 1 || st.Refused != 2 {
		t.Errorf("stats %+v; want 1 connection, 1 subscribe, 1+1 authorizes, 1 unknown method, 2 refused", st)
	}
}

// TestPoolChecksShares: shares found by hand are judged by the real check, a
// duplicate gets 22, NewBlock voids older jobs (21), and a line that is not JSON
// closes the connection.
func TestPoolChecksShares(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	c := dialRaw(t, p.Addr())
	c.subscribe("bob")
	j1 := c.job

	share := c.findShare(j1, "bob", 1, tinyDifficulty, 0)
	c.send(stratum.AppendSubmit(nil, 10, &share))
	if !c.reply(10).Accepted() {
		t.Fatal("valid share: want accepted")
	}
	c.send(stratum.AppendSubmit(nil, 11, &share))
	if rej := c.reply(11).Reject(); rej.Code != stratum.ErrDuplicateShare.Code {
		t.Errorf("same share again: code %d; want 22", rej.Code)
	}
	// The next nonce that is not a share is answered 23.
	bad := share
	for bad.Nonce++; checkAt(j1, c, &bad, tinyDifficulty) == stratum.VerdictAccepted; bad.Nonce++ {
	}
	c.send(stratum.AppendSubmit(nil, 12, &bad))
	if rej := c.reply(12).Reject(); rej.Code != stratum.ErrLowDifficulty.Code {
		t.Errorf("hash above target: code %d; want 23", rej.Code)
	}

	stale := c.findShare(j1, "bob", 2, tinyDifficulty, 0)
	j2 := p.NewBlock()
	if got := c.waitJob(j1); got.ID != j2.ID || !got.Clean || got.PrevHash == j1.PrevHash {
		t.Fatalf("after NewBlock got job %q clean %v; want %q, clean, a new prevhash", got.ID, got.Clean, j2.ID)
	}
	c.send(stratum.AppendSubmit(nil, 13, &stale))
	if rej := c.reply(13).Reject(); rej.Code != stratum.ErrJobNotFound.Code {
		t.Errorf("share on a voided job: code %d; want 21", rej.Code)
	}
	fresh := c.findShare(j2, "bob", 3, tinyDifficulty, 0)
	c.send(stratum.AppendSubmit(nil, 14, &fresh))
	if !c.reply(14).Accepted() {
		t.Error("share on the new job: want accepted")
	}

	st := p.Stats()
	if st.Verdicts[stratum.VerdictAccepted] != 2 || st.Verdicts[stratum.VerdictDuplicate] != 1 ||
		st.Verdicts[stratum.VerdictUnknownJob] != 1 || st.Verdicts[stratum.VerdictLowDifficulty] != 1 {
		t.Errorf("verdicts %v; want 2 accepted, 1 duplicate, 1 unknown job, 1 low difficulty", st.Verdicts)
	}
	log := workerSubmits(&st, "bob")
	if len(log) != 5 || log[0].JobID != j1.ID || log[0].Nonce != share.Nonce || log[0].Extranonce2 != string(share.Extranonce2) || log[0].Verdict != stratum.VerdictAccepted {
		t.Errorf("submit log %+v; want the first share on job %q nonce %08x first", log, j1.ID, share.Nonce)
	}

	// A TLS ClientHello on the plain port is dropped at once.
	c.send([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"))
	eventually(t, "the pool to close a non-JSON connection", func() bool {
		st := p.Stats()
		return st.Closes[stratumtest.CloseProtocol] == 1 && st.Sessions == 0
	})
}

// checkAt judges s on j at difficulty d with c's extranonces.
func checkAt(j *stratum.Job, c *rawClient, s *stratum.Submit, d float64) stratum.Verdict {
	target, _ := stratum.TargetFromDifficulty(d)
	var ch stratum.Checker
	return ch.Check(j, s, &stratum.CheckParams{Extranonce1: c.en1, Extranonce2Size: c.en2Size, ShareTarget: &target}).Verdict
}

// shareVector is the part of testdata/share-vectors.json this test needs.
type shareVector struct {
	Name      string `json:"name"`
	Subscribe struct {
		Extranonce1     string `json:"extranonce1"`
		Extranonce2Size int    `json:"extranonce2_size"`
	} `json:"subscribe"`
	Configure *struct {
		NegotiatedMask string `json:"negotiated_mask"`
	} `json:"configure"`
	NotifyParams []any    `json:"notify_params"`
	SubmitParams []string `json:"submit_params"`
	BlockHash    string   `json:"block_hash"`
}

func loadVector(t *testing.T, name string) shareVector {
	t.Helper()
	b, err := os.ReadFile("../../testdata/share-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []shareVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("vector %q not found", name)
	return shareVector{}
}

// TestPoolReproducesBlock881423: the pool serving the real job of block 881423
// with the real extranonce1 accepts the real submit (version rolling, 6 params)
// as a block candidate with the real block hash, end to end over TCP.
func TestPoolReproducesBlock881423(t *testing.T) {
	v := loadVector(t, "mainnet-881423-2025-version-rolling-ckpool-layout")
	const wantHash = "0000000000000000000269d52c24ea451225613aab095d90d771d4e29aa96cdd"
	if v.BlockHash != wantHash {
		t.Fatalf("vector block hash %s; want %s", v.BlockHash, wantHash)
	}
	line, err := json.Marshal(map[string]any{"id": nil, "method": "mining.notify", "params": v.NotifyParams})
	if err != nil {
		t.Fatal(err)
	}
	var d stratum.Decoder
	m, err := d.Decode(line)
	if err != nil {
		t.Fatal(err)
	}
	job, err := m.Notify()
	if err != nil {
		t.Fatal(err)
	}
	en1, _ := hex.DecodeString(v.Subscribe.Extranonce1)
	p := newPool(t, stratumtest.PoolConfig{
		Jobs:            []*stratum.Job{job},
		Extranonce1:     en1,
		Extranonce2Size: v.Subscribe.Extranonce2Size,
		VersionMask:     0x1fffe000,
	})

	c := dialRaw(t, p.Addr())
	c.send(stratum.AppendConfigure(nil, 1, stratum.ExtVersionRolling, 0x1fffe000, 0))
	cr, err := c.reply(1).ConfigureResult()
	if err != nil || cr.Granted&stratum.ExtVersionRolling == 0 || cr.VersionMask != 0x1fffe000 {
		t.Fatalf("configure result %+v, %v; want version rolling with mask 1fffe000", cr, err)
	}
	c.subscribe(v.SubmitParams[0])
	if hex.EncodeToString(c.en1) != "f1ad9a67" || c.en2Size != 8 || c.job.ID != v.SubmitParams[1] {
		t.Fatalf("subscribed with extranonce1 %x size %d job %q; want f1ad9a67, 8, %q", c.en1, c.en2Size, c.job.ID, v.SubmitParams[1])
	}

	// The vector's submit, byte for byte as a miner sent it.
	params, _ := json.Marshal(v.SubmitParams)
	c.send([]byte(`{"id":4,"method":"mining.submit","params":` + string(params) + "}\n"))
	if r := c.reply(4); !r.Accepted() {
		t.Fatalf("real block share: rejected %+v", r.Reject())
	}
	st := p.Stats()
	if st.BlockCandidates != 1 || len(st.Blocks) != 1 || st.Blocks[0].Hash.String() != wantHash {
		t.Fatalf("block candidates %d %+v; want one with hash %s", st.BlockCandidates, st.Blocks, wantHash)
	}
	rec := st.Submits[len(st.Submits)-1]
	if !rec.HasVersionBits || rec.VersionBits != 0x0e596000 || !rec.Block || rec.Hash.String() != wantHash {
		t.Errorf("logged submit %+v; want version bits 0e596000, a block with hash %s", rec, wantHash)
	}

	// The same share without its version bits hashes a different header: no block.
	c.send([]byte(`{"id":5,"method":"mining.submit","params":` + string(mustJSON(t, v.SubmitParams[:5])) + "}\n"))
	if r := c.reply(5); r.Accepted() {
		t.Error("share without version bits: want a rejection")
	}
	if st := p.Stats(); st.BlockCandidates != 1 {
		t.Errorf("block candidates %d; want still 1", st.BlockCandidates)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
