package stratumtest_test

import (
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// waitTimeout bounds every wait in these tests; a healthy run needs a fraction.
const waitTimeout = 8 * time.Second

// tinyDifficulty gives a share about every 430 hashes.
const tinyDifficulty = 1e-7

func newPool(t *testing.T, cfg stratumtest.PoolConfig) *stratumtest.Pool {
	t.Helper()
	return stratumtest.StartPool(t, cfg)
}

// startMiner runs a miner until the returned stop is called (or the test ends);
// stop waits for Run to return, so the miner's counts are final.
func startMiner(t *testing.T, cfg stratumtest.MinerConfig) (*stratumtest.Miner, func()) {
	t.Helper()
	ms, stop := stratumtest.RunMiners(t, cfg)
	return ms[0], stop
}

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	stratumtest.WaitFor(t, waitTimeout, what, cond)
}

// workerSubmits returns the pool's logged submits from one worker.
func workerSubmits(st *stratumtest.PoolStats, worker string) []stratumtest.SubmitRecord {
	var out []stratumtest.SubmitRecord
	for _, r := range st.Submits {
		if r.Worker == worker {
			out = append(out, r)
		}
	}
	return out
}

func sessionOf(t *testing.T, p *stratumtest.Pool, worker string) stratumtest.SessionInfo {
	t.Helper()
	for _, s := range p.Sessions() {
		for _, w := range s.Workers {
			if w == worker {
				return s
			}
		}
	}
	t.Fatalf("no session authorized %q", worker)
	return stratumtest.SessionInfo{}
}

// rawClient speaks Stratum by hand, for asserting the pool's exact answers.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	lr   *stratum.LineReader
	dec  stratum.Decoder
	// From the messages read so far.
	job        *stratum.Job
	en1        []byte
	en2Size    int
	difficulty float64
	seen       []string // methods of notifications and "reply <id>" of responses, in order
	// Bytes written to and read from the socket.
	sent, received int
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n *int
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += n
	return n, err
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn}
	c.lr = stratum.NewLineReader(countReader{conn, &c.received}, 0)
	return c
}

func (c *rawClient) send(line []byte) {
	c.t.Helper()
	n, err := c.conn.Write(line)
	c.sent += n
	if err != nil {
		c.t.Fatal(err)
	}
}

// next reads one message (valid until the next call), keeping jobs and
// difficulty.
func (c *rawClient) next() *stratum.Message {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := c.lr.ReadLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m, err := c.dec.Decode(line)
	if err != nil {
		c.t.Fatalf("decode %q: %v", line, err)
	}
	switch {
	case m.Kind == stratum.KindResponse:
		c.seen = append(c.seen, "reply "+string(m.ID))
	case m.Method == stratum.MethodNotify:
		j, err := m.Notify()
		if err != nil {
			c.t.Fatalf("notify %q: %v", line, err)
		}
		c.job = j
		c.seen = append(c.seen, m.Method.String())
	case m.Method == stratum.MethodSetDifficulty:
		d, err := m.Difficulty()
		if err != nil {
			c.t.Fatal(err)
		}
		c.difficulty = d
		c.seen = append(c.seen, m.Method.String())
	default:
		c.seen = append(c.seen, m.Method.String())
	}
	return m
}

// reply reads until the response with the given id.
func (c *rawClient) reply(id uint64) *stratum.Message {
	c.t.Helper()
	want := strconv.FormatUint(id, 10)
	for {
		m := c.next()
		if m.Kind == stratum.KindResponse && string(m.ID) == want {
			return m
		}
	}
}

// waitJob reads until a notify for a job other than old arrives.
func (c *rawClient) waitJob(old *stratum.Job) *stratum.Job {
	c.t.Helper()
	for c.job == nil || c.job == old {
		c.next()
	}
	return c.job
}

// subscribe subscribes and authorizes worker, and reads until the first job.
func (c *rawClient) subscribe(worker string) {
	c.t.Helper()
	c.send(stratum.AppendSubscribe(nil, 1, "raw/1.0", ""))
	c.send(stratum.AppendAuthorize(nil, 2, worker, "x"))
	r, err := c.reply(1).SubscribeResult()
	if err != nil {
		c.t.Fatal(err)
	}
	c.en1, c.en2Size = r.Extranonce1, r.Extranonce2Size
	if ok, _ := c.reply(2).BoolResult(); !ok {
		c.t.Fatalf("authorize %q refused", worker)
	}
	c.waitJob(nil)
}

// findShare searches nonces from start for a share on j at difficulty d with
// this client's extranonces, as a miner would, and returns it.
func (c *rawClient) findShare(j *stratum.Job, worker string, en2 uint64, d float64, start uint32) stratum.Submit {
	c.t.Helper()
	target, err := stratum.TargetFromDifficulty(d)
	if err != nil {
		c.t.Fatal(err)
	}
	raw := make([]byte, c.en2Size)
	for i := len(raw) - 1; i >= 0; i-- {
		raw[i] = byte(en2)
		en2 >>= 8
	}
	s := stratum.Submit{
		Worker:      []byte(worker),
		JobID:       []byte(j.ID),
		Extranonce2: []byte(hex.EncodeToString(raw)),
		NTime:       j.NTime,
	}
	p := stratum.CheckParams{Extranonce1: c.en1, Extranonce2Size: c.en2Size, ShareTarget: &target}
	var ch stratum.Checker
	for n := start; n < start+1<<20; n++ {
		s.Nonce = n
		if ch.Check(j, &s, &p).Verdict == stratum.VerdictAccepted {
			return s
		}
	}
	c.t.Fatal("no share found")
	return s
}
