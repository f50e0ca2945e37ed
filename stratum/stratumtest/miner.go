package stratumtest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// Defaults and limits of the miner.
const (
	// DefaultHashRate is a miner's hash rate when none is configured, in hashes per
	// second: modest, so a thousand miners share a test machine (at difficulty
	// 1e-7, about 430 hashes per share, it submits some 23 shares a second).
	DefaultHashRate = 10_000
	// DefaultUserAgent is the user agent a miner subscribes with by default.
	DefaultUserAgent = "stratumtest/1.0"

	defaultWorker         = "worker"
	defaultPassword       = "x"
	defaultReconnectDelay = 50 * time.Millisecond
	defaultMaxReconnect   = 2 * time.Second
	defaultDialTimeout    = 5 * time.Second
	maxReconnectWait      = 60 * time.Second // cap on client.reconnect's wait
	drainTimeout          = time.Second      // how long Run waits for answers to shares in flight
	maxPendingSubmits     = 4096             // submits awaiting an answer per connection
	maxLatencySamples     = 256              // answer latencies kept in MinerStats
	maxRejectReasons      = 64               // distinct reject reasons counted
	hashBatchDuration     = 100 * time.Millisecond
	maxHashBatch          = 4096
	workCheckEvery        = 64 // hashes between checks for new work
	stratumTCPScheme      = "stratum+tcp://"
)

// MinerConfig configures a Miner. Only Addr is required.
type MinerConfig struct {
	// Addr is the server, as "host:port" or "stratum+tcp://host:port".
	Addr string
	// Worker is the name authorized and put in each submit; default "worker".
	Worker string
	// Password is sent with mining.authorize; default "x".
	Password string
	// UserAgent is sent with mining.subscribe and answers client.get_version;
	// default DefaultUserAgent.
	UserAgent string
	// VersionRolling sends mining.configure first, asking for VersionMask, and
	// rolls version bits inside the granted mask (6-param submits).
	VersionRolling bool
	// VersionMask is the mask asked for; default DefaultVersionMask.
	VersionMask uint32
	// ExtranonceSubscribe sends mining.extranonce.subscribe; without it
	// mining.set_extranonce is ignored, as minerd does.
	ExtranonceSubscribe bool
	// SuggestDifficulty, when above zero, is sent as mining.suggest_difficulty.
	SuggestDifficulty float64
	// HashRate is hashes per second, independent of difficulty; default
	// DefaultHashRate, negative for as fast as one goroutine goes.
	HashRate float64
	// MaxSharesPerSecond caps the shares submitted per second (shares found beyond
	// it are counted in SharesSkipped, not sent); default 0, no cap.
	MaxSharesPerSecond float64
	// ReconnectDelay is the pause before redialing after a lost connection,
	// doubling up to MaxReconnectDelay; defaults 50 ms and 2 s. A session that got
	// a subscribe result resets it, so a refused authorize retries after
	// ReconnectDelay. With ReconnectDelay == MaxReconnectDelay the miner behaves as
	// firmware does without a pool: it retries at that fixed interval, and since it
	// mines only a job received on a connection whose authorize was accepted, it
	// hashes and submits nothing until a retry is accepted, then resumes.
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// DialTimeout bounds each dial; default 5 s.
	DialTimeout time.Duration
	// IdleTimeout, when above zero, drops a connection silent for that long (and
	// redials), as minerd does after 120 s; default 0, never.
	IdleTimeout time.Duration
	// ShareRate, when above zero, paces by shares instead of hashes: the miner
	// hashes as fast as one goroutine goes until it finds a share, submits it, then
	// pauses an exponentially distributed gap with mean 1/ShareRate seconds (waking
	// early only to take new work, never to submit sooner). It takes precedence
	// over HashRate; default 0, pace by HashRate.
	ShareRate float64
	// Idle connects and follows the protocol (handshake, jobs, difficulty, pings)
	// but never hashes or submits.
	Idle bool
	// LocalAddr is the IP address to dial from, e.g. "127.0.0.2"; default "", the
	// kernel picks.
	LocalAddr string
	// Backups are further servers, as Addr, tried after it: when a dial fails the
	// next dial goes to the next address in the list, wrapping around (as
	// firmware's pools 2 and 3). A lost connection first redials the same address.
	Backups []string
	// Misbehave mixes deliberate faults into the shares; the zero value sends
	// every share honestly.
	Misbehave Misbehaviour
	// OnReply, when set, is called for every answered submit, from the
	// connection's reader goroutine; it must be quick and safe for concurrent use.
	OnReply func(Reply)
	// OnJob, when set, is called for every mining.notify received, under the same
	// rules as OnReply.
	OnJob func(JobEvent)
}

// trimAddr removes the stratum+tcp:// scheme and a trailing slash.
func trimAddr(a string) string {
	a = strings.TrimPrefix(a, stratumTCPScheme)
	return strings.TrimSuffix(a, "/")
}

func (c *MinerConfig) addr() string { return trimAddr(c.Addr) }

// addrs returns Addr then the Backups, trimmed.
func (c *MinerConfig) addrs() []string {
	list := make([]string, 0, 1+len(c.Backups))
	list = append(list, c.addr())
	for _, b := range c.Backups {
		list = append(list, trimAddr(b))
	}
	return list
}

// localAddr returns the address to dial from: nil when LocalAddr is empty.
func (c *MinerConfig) localAddr() (*net.TCPAddr, error) {
	if c.LocalAddr == "" {
		return nil, nil
	}
	ip := net.ParseIP(c.LocalAddr)
	if ip == nil {
		return nil, ErrLocalAddr
	}
	return &net.TCPAddr{IP: ip}, nil
}

func (c *MinerConfig) worker() string {
	if c.Worker == "" {
		return defaultWorker
	}
	return c.Worker
}

func (c *MinerConfig) password() string {
	if c.Password == "" {
		return defaultPassword
	}
	return c.Password
}

func (c *MinerConfig) userAgent() string {
	if c.UserAgent == "" {
		return DefaultUserAgent
	}
	return c.UserAgent
}

func (c *MinerConfig) versionMask() uint32 {
	if c.VersionMask == 0 {
		return DefaultVersionMask
	}
	return c.VersionMask
}

func (c *MinerConfig) hashRate() float64 {
	if c.HashRate == 0 {
		return DefaultHashRate
	}
	return c.HashRate
}

func (c *MinerConfig) reconnectDelay() time.Duration {
	if c.ReconnectDelay <= 0 {
		return defaultReconnectDelay
	}
	return c.ReconnectDelay
}

func (c *MinerConfig) maxReconnectDelay() time.Duration {
	if c.MaxReconnectDelay <= 0 {
		return max(defaultMaxReconnect, c.reconnectDelay())
	}
	return c.MaxReconnectDelay
}

func (c *MinerConfig) dialTimeout() time.Duration {
	if c.DialTimeout <= 0 {
		return defaultDialTimeout
	}
	return c.DialTimeout
}

// Miner is a simulated ASIC: it connects, subscribes, really hashes and submits
// shares, and reconnects when the connection is lost. Run drives it; Stats may be
// called at any time from any goroutine.
type Miner struct {
	cfg     MinerConfig
	running atomic.Bool
	hashes  atomic.Uint64
	// bytesIn and bytesOut count the bytes read from and written to the server,
	// over all connections (see countingConn).
	bytesIn, bytesOut atomic.Uint64

	mu        sync.Mutex // guards the fields below
	st        MinerStats
	latencies []time.Duration // ring of maxLatencySamples
	latNext   int
	sessionID string // last session id, to resume with
}

// NewMiner returns a miner for cfg. It does nothing until Run.
func NewMiner(cfg MinerConfig) *Miner {
	return &Miner{cfg: cfg, st: MinerStats{
		RejectReasons: make(map[string]uint64),
		RejectCodes:   make(map[int]uint64),
		Errors:        make(map[string]uint64),
	}}
}

// Errors returned by Run.
var (
	ErrNoAddr  = errors.New("stratumtest: MinerConfig.Addr is empty")
	ErrRunning = errors.New("stratumtest: miner is already running")
	// ErrLocalAddr reports a MinerConfig.LocalAddr that is not an IP address.
	ErrLocalAddr = errors.New("stratumtest: MinerConfig.LocalAddr is not an IP address")
)

// Run connects to the server and mines until ctx is done, redialing with back-off
// whenever the connection is lost (the next address of Addr and Backups after a
// failed dial) and following client.reconnect. When ctx is done it stops hashing,
// waits up to a second for answers to the shares in flight (so its counts match
// the pool's), closes the connection and returns nil. It returns an error only
// when Addr is empty, LocalAddr is not an IP address or the miner is already
// running.
func (m *Miner) Run(ctx context.Context) error {
	if m.cfg.Addr == "" {
		return ErrNoAddr
	}
	local, err := m.cfg.localAddr()
	if err != nil {
		return err
	}
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)

	dialer := net.Dialer{Timeout: m.cfg.dialTimeout()}
	if local != nil {
		dialer.LocalAddr = local
	}
	addrs := m.cfg.addrs()
	next := 0 // index in addrs of addr, or of the address before a reconnect target
	addr := addrs[0]
	delay := m.cfg.reconnectDelay()
	for {
		end := m.runConn(ctx, &dialer, addr)
		if ctx.Err() != nil {
			return nil
		}
		if end.err != nil {
			m.recordError(end.err)
		}
		var pause time.Duration
		switch {
		case end.reconnect != "":
			addr, pause = end.reconnect, end.wait
			m.update(func(s *MinerStats) { s.Reconnects++ })
			delay = m.cfg.reconnectDelay()
		case end.churn:
			delay = m.cfg.reconnectDelay() // redial at once
		default:
			if end.dialFailed && len(addrs) > 1 {
				next = (next + 1) % len(addrs)
				addr = addrs[next]
			}
			if end.subscribed {
				delay = m.cfg.reconnectDelay() // a session that worked resets the back-off
			}
			pause, delay = delay, min(2*delay, m.cfg.maxReconnectDelay())
		}
		if !sleepCtx(ctx, pause) {
			return nil
		}
	}
}

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connEnd is how one connection ended.
type connEnd struct {
	err        error         // what ended it; nil when the miner closed it on purpose
	dialFailed bool          // the dial failed: there was no connection
	subscribed bool          // the session got as far as a subscribe result
	churn      bool          // closed by Misbehaviour.Churn: redial at once
	reconnect  string        // client.reconnect target, when that ended it
	wait       time.Duration // client.reconnect's wait
}

// runConn dials addr and serves one connection until it ends.
func (m *Miner) runConn(ctx context.Context, d *net.Dialer, addr string) connEnd {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		m.update(func(s *MinerStats) { s.DialFailures++ })
		return connEnd{err: err, dialFailed: true}
	}
	m.update(func(s *MinerStats) {
		s.Connects++
		s.Addr = addr
	})
	c := newMinerConn(m, conn, addr)
	return c.serve(ctx)
}

// resumeID returns the session id to resume with.
func (m *Miner) resumeID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessionID
}

// joinHostPort resolves a client.reconnect target against the current address:
// an empty host or a zero port keeps the current one.
func joinHostPort(current string, r stratum.Reconnect) string {
	host, port, err := net.SplitHostPort(current)
	if err != nil {
		return current
	}
	if len(r.Host) > 0 {
		host = string(r.Host)
	}
	if r.Port != 0 {
		port = strconv.Itoa(r.Port)
	}
	return net.JoinHostPort(host, port)
}
