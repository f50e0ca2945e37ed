package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// adminFixture is a real pool, its admin handler behind httptest, and one miner.
type adminFixture struct {
	pool  *stratumtest.Pool
	srv   *httptest.Server
	miner *stratumtest.Miner
}

func newAdminFixture(t *testing.T, mc stratumtest.MinerConfig) *adminFixture {
	t.Helper()
	p := stratumtest.StartPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	srv := httptest.NewServer(newAdmin(p, time.Now()))
	t.Cleanup(srv.Close)
	mc.Addr, mc.Worker, mc.HashRate = p.URL(), "w1", 20_000
	ms, _ := stratumtest.RunMiners(t, mc)
	m := ms[0]
	eventually(t, "a first accepted share", func() bool { return m.Stats().Accepted > 0 })
	return &adminFixture{pool: p, srv: srv, miner: m}
}

// call sends method path and decodes the JSON answer.
func (f *adminFixture) call(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: decoding answer: %v", method, path, err)
	}
	return resp.StatusCode, body
}

// post sends POST path and fails unless it answers 200 {"ok":true}.
func (f *adminFixture) post(t *testing.T, path string) map[string]any {
	t.Helper()
	code, body := f.call(t, http.MethodPost, path)
	if code != http.StatusOK || body["ok"] != true {
		t.Fatalf("POST %s: got %d %v; want 200 ok", path, code, body)
	}
	return body
}

func TestAdminNewBlockAndJob(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	jobs, clean := f.pool.Stats().Jobs, f.miner.Stats().CleanJobs
	body := f.post(t, "/fault/new-block")
	if got := f.pool.Stats().Jobs; got != jobs+1 {
		t.Errorf("jobs after new-block: got %d; want %d", got, jobs+1)
	}
	if body["clean"] != true || body["job_id"] != f.pool.CurrentJob().ID {
		t.Errorf("new-block answer: got %v; want clean and the current job id %s", body, f.pool.CurrentJob().ID)
	}
	eventually(t, "the miner to see a clean job", func() bool { return f.miner.Stats().CleanJobs == clean+1 })

	got := f.miner.Stats()
	body = f.post(t, "/fault/job")
	if body["clean"] != false || f.pool.Stats().Jobs != jobs+2 {
		t.Errorf("job answer: got %v, jobs %d; want not clean, jobs %d", body, f.pool.Stats().Jobs, jobs+2)
	}
	eventually(t, "the miner to see a non-clean job", func() bool { return f.miner.Stats().JobsReceived == got.JobsReceived+1 })
	if n := f.miner.Stats().CleanJobs; n != got.CleanJobs {
		t.Errorf("clean jobs after /fault/job: got %d; want %d", n, got.CleanJobs)
	}
}

func TestAdminRejectNext(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	rejected := f.miner.Stats().Rejected
	body := f.post(t, "/fault/reject?next=2")
	if body["next"] != 2.0 {
		t.Errorf("answer: got %v; want next 2", body)
	}
	accepted := f.pool.Stats().Accepted()
	eventually(t, "two injected rejects, then more accepted shares", func() bool {
		return f.pool.Stats().InjectedRejects == 2 && f.pool.Stats().Accepted() > accepted+2
	})
	if n := f.pool.Stats().InjectedRejects; n != 2 {
		t.Errorf("injected rejects: got %d; want 2", n)
	}
	eventually(t, "the miner to count the two rejects", func() bool { return f.miner.Stats().Rejected == rejected+2 })
	reason := stratumtest.RejectReason(stratumtest.RejectArray, stratum.VerdictLowDifficulty)
	if n := f.miner.Stats().RejectReasons[reason]; n != 2 {
		t.Errorf("miner rejects for %q: got %d; want 2", reason, n)
	}
}

func TestAdminRejectFraction(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	f.post(t, "/fault/reject?fraction=1")
	before := f.pool.Stats()
	eventually(t, "three injected rejects", func() bool { return f.pool.Stats().InjectedRejects >= 3 })
	if a := f.pool.Stats().Accepted(); a > before.Accepted()+1 { // one may have been judged before the change
		t.Errorf("accepted while fraction=1: got %d more; want at most 1", a-before.Accepted())
	}
	f.post(t, "/fault/reject?fraction=0")
	mid := f.pool.Stats().Accepted()
	eventually(t, "accepted shares again", func() bool { return f.pool.Stats().Accepted() > mid+2 })
}

func TestAdminDropAndReconnect(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	if body := f.post(t, "/fault/drop"); body["sessions"] != 1.0 {
		t.Errorf("drop: got %v; want sessions 1", body)
	}
	eventually(t, "the miner to redial after the drop", func() bool { return f.miner.Stats().Connects >= 2 })
	if n := f.pool.Stats().Closes[stratumtest.CloseDropped]; n != 1 {
		t.Errorf("dropped closes: got %d; want 1", n)
	}
	eventually(t, "a session again", func() bool { return f.pool.Stats().Sessions == 1 })
	if body := f.post(t, "/fault/reconnect"); body["sessions"] != 1.0 {
		t.Errorf("reconnect: got %v; want sessions 1", body)
	}
	eventually(t, "the miner to follow client.reconnect", func() bool { return f.miner.Stats().Reconnects >= 1 })
	body := f.post(t, "/fault/reconnect?host=127.0.0.1&port="+strings.TrimPrefix(f.pool.Addr(), "127.0.0.1:")+"&wait=0")
	if body["host"] != "127.0.0.1" || body["wait"] != 0.0 {
		t.Errorf("reconnect with host: got %v", body)
	}
}

func TestAdminStallResume(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	f.post(t, "/fault/stall")
	time.Sleep(50 * time.Millisecond) // let a submit read before the stall finish
	n := f.pool.Stats().SubmitsTotal
	time.Sleep(300 * time.Millisecond)
	if got := f.pool.Stats().SubmitsTotal; got != n {
		t.Errorf("submits judged while stalled: got %d more; want 0", got-n)
	}
	f.post(t, "/fault/resume")
	eventually(t, "submits judged after resume", func() bool { return f.pool.Stats().SubmitsTotal > n })

	body := f.post(t, "/fault/stall?for=300ms")
	if body["for"] != "300ms" {
		t.Errorf("stall for: got %v", body)
	}
	time.Sleep(50 * time.Millisecond)
	n = f.pool.Stats().SubmitsTotal
	eventually(t, "the stall to end by itself", func() bool { return f.pool.Stats().SubmitsTotal > n })
}

func TestAdminExtranonceAndVersionMask(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{ExtranonceSubscribe: true, VersionRolling: true})
	if body := f.post(t, "/fault/set-extranonce"); body["sessions"] != 1.0 {
		t.Errorf("set-extranonce: got %v; want sessions 1", body)
	}
	f.post(t, "/fault/job") // the new extranonce1 applies from the next job
	eventually(t, "the miner to switch extranonce1", func() bool { return f.miner.Stats().ExtranonceChanges == 1 })

	body := f.post(t, "/fault/set-version-mask?mask=00ffe000")
	if body["sessions"] != 1.0 || body["mask"] != "00ffe000" {
		t.Errorf("set-version-mask: got %v; want sessions 1, mask 00ffe000", body)
	}
	eventually(t, "the miner to take the new mask", func() bool {
		st := f.miner.Stats()
		return st.VersionMaskChanges == 1 && st.VersionMask == 0x00ffe000&stratumtest.DefaultVersionMask
	})
	accepted := f.pool.Stats().Accepted()
	eventually(t, "accepted shares under the new mask", func() bool { return f.pool.Stats().Accepted() > accepted+2 })
	if n := f.pool.Stats().Verdicts[stratum.VerdictVersionBits]; n != 0 {
		t.Errorf("version-bits rejects: got %d; want 0", n)
	}
}

func TestAdminDifficulty(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	body := f.post(t, "/fault/difficulty?d=2e-7")
	if body["difficulty"] != 2e-7 || f.pool.Difficulty() != 2e-7 {
		t.Errorf("difficulty: got answer %v, pool %v; want 2e-7", body, f.pool.Difficulty())
	}
	f.post(t, "/fault/job")
	eventually(t, "the miner to mine at 2e-7", func() bool { return f.miner.Stats().Difficulty == 2e-7 })
}

func TestAdminForgetJobs(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	if body := f.post(t, "/fault/forget-jobs"); body["jobs"] != 1.0 || body["fault"] != "forget-jobs" {
		t.Errorf("forget-jobs: got %v; want jobs 1 (the job sent at subscribe)", body)
	}
	eventually(t, "shares on the forgotten job answered 21", func() bool {
		return f.pool.Stats().Verdicts[stratum.VerdictUnknownJob] >= 2
	})
	reason := stratumtest.RejectReason(stratumtest.RejectArray, stratum.VerdictUnknownJob)
	eventually(t, "the miner to count the rejects", func() bool { return f.miner.Stats().RejectReasons[reason] >= 2 })
	f.post(t, "/fault/job")
	accepted := f.pool.Stats().Accepted()
	eventually(t, "accepted shares on the job made afterwards", func() bool { return f.pool.Stats().Accepted() > accepted+2 })
}

func TestAdminReuseJobIDs(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	id := f.pool.CurrentJob().ID
	if body := f.post(t, "/fault/reuse-job-ids?on=true"); body["reuse_job_ids"] != true {
		t.Errorf("reuse-job-ids?on=true: got %v", body)
	}
	for _, path := range []string{"/fault/job", "/fault/new-block"} {
		if body := f.post(t, path); body["job_id"] != id {
			t.Errorf("POST %s with reused ids: got %v; want job_id %q", path, body, id)
		}
	}
	accepted := f.pool.Stats().Accepted()
	eventually(t, "accepted shares on the reused id", func() bool { return f.pool.Stats().Accepted() > accepted+2 })
	if body := f.post(t, "/fault/reuse-job-ids?on=false"); body["reuse_job_ids"] != false {
		t.Errorf("reuse-job-ids?on=false: got %v", body)
	}
	if body := f.post(t, "/fault/job"); body["job_id"] == id {
		t.Errorf("POST /fault/job after on=false: got %v; want a new job_id", body)
	}
}

func TestAdminStats(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	resp, err := f.srv.Client().Get(f.srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	if keys["bytes_in"] == nil || keys["bytes_out"] == nil || r.BytesIn == 0 || r.BytesOut == 0 {
		t.Errorf("GET /stats: bytes_in %v, bytes_out %v; want both above 0", keys["bytes_in"], keys["bytes_out"])
	}
	eventually(t, "bytes to grow as the miner submits", func() bool {
		st := f.pool.Stats()
		return st.BytesIn > r.BytesIn && st.BytesOut > r.BytesOut
	})
	if resp.StatusCode != http.StatusOK || r.Sessions != 1 || r.Connections != 1 || r.Jobs < 1 || r.SubmitsTotal < 1 ||
		r.Accepted < 1 || r.Verdicts["accepted"] != r.Accepted || r.Workers["w1"].Accepted < 1 {
		t.Errorf("GET /stats: got %d %+v", resp.StatusCode, r)
	}
	if _, ok := r.Verdicts["low_difficulty"]; !ok {
		t.Errorf("verdicts: got %v; want every verdict name, zeros included", r.Verdicts)
	}
}

func TestAdminBadRequests(t *testing.T) {
	f := newAdminFixture(t, stratumtest.MinerConfig{})
	for _, path := range []string{"/fault/drop", "/fault/stall", "/fault/resume", "/fault/reject?next=1",
		"/fault/set-extranonce", "/fault/set-version-mask?mask=0", "/fault/reconnect", "/fault/new-block",
		"/fault/job", "/fault/difficulty?d=1", "/fault/forget-jobs", "/fault/reuse-job-ids?on=true"} {
		if code, body := f.call(t, http.MethodGet, path); code != http.StatusMethodNotAllowed || body["ok"] != false {
			t.Errorf("GET %s: got %d %v; want 405", path, code, body)
		}
	}
	if code, _ := f.call(t, http.MethodPost, "/stats"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /stats: got %d; want 405", code)
	}
	bad := func(path, want string) {
		t.Helper()
		code, body := f.call(t, http.MethodPost, path)
		if msg, _ := body["error"].(string); code != http.StatusBadRequest || body["ok"] != false || !strings.Contains(msg, want) {
			t.Errorf("POST %s: got %d %v; want 400 with an error containing %q", path, code, body, want)
		}
	}
	bad("/fault/difficulty?d=x", `d: "x"`)
	bad("/fault/difficulty?d=-1", `d: "-1"`)
	bad("/fault/difficulty", `d: ""`)
	bad("/fault/stall?for=soon", `for: "soon"`)
	bad("/fault/stall?for=0s", `for: "0s"`)
	bad("/fault/reject", "want next=N or fraction=F")
	bad("/fault/reject?next=-1", `next: "-1"`)
	bad("/fault/reject?next=1&fraction=2", `fraction: "2"`)
	bad("/fault/set-version-mask", "mask: missing")
	bad("/fault/set-version-mask?mask=zz", `mask: "zz"`)
	bad("/fault/reconnect?host=h", "port: missing")
	bad("/fault/reconnect?host=h&port=99999", `port: "99999"`)
	bad("/fault/reconnect?wait=x", `wait: "x"`)
	bad("/fault/job?%zz", "query:")
	bad("/fault/reuse-job-ids", "on: missing")
	bad("/fault/reuse-job-ids?on=maybe", `on: "maybe"`)
	resp, err := f.srv.Client().Post(f.srv.URL+"/fault/frobnicate", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /fault/frobnicate: got %d; want 404", resp.StatusCode)
	}
	if n := f.pool.Stats().InjectedRejects; n != 0 {
		t.Errorf("injected rejects after a refused /fault/reject: got %d; want 0", n)
	}
}
