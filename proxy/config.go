package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults for Config. Each limit is named here and applied by an accessor, so a zero
// Config is a working one.
const (
	DefaultListen               = "127.0.0.1:3333"
	DefaultHTTP                 = "127.0.0.1:8080"
	DefaultMinersPerUpstream    = 1024
	DefaultPrefixSize           = 2
	DefaultMaxLineSize          = 4 << 10
	DefaultReadIdleTimeout      = 10 * time.Minute
	DefaultWriteTimeout         = 10 * time.Second
	DefaultMaxPendingBytes      = 256 << 10
	DefaultMaxConnections       = 19000
	DefaultMaxConnectionsPerIP  = 0 // unlimited
	DefaultProxyHeaderTimeout   = 5 * time.Second
	DefaultJobRefresh           = 60 * time.Second
	DefaultVardiffShareInterval = 10 * time.Second
	DefaultVardiffRetarget      = 60 * time.Second
	DefaultMinDifficulty        = 0.0001
	DefaultStartDifficulty      = 1
	DefaultDialTimeout          = 5 * time.Second
	DefaultJobTimeout           = 30 * time.Second
	DefaultSubmitTimeout        = 10 * time.Second
	DefaultBackoffMin           = 200 * time.Millisecond
	DefaultBackoffMax           = 30 * time.Second
	DefaultFailbackAfter        = 60 * time.Second
	DefaultResumeWindow         = 2 * time.Second
	DefaultShutdownTimeout      = 10 * time.Second
	DefaultSubscribeWait        = 10 * time.Second
	DefaultMaxBufferedShares    = 4096
	DefaultVersionMask          = 0x1fffe000
	DefaultJobsPerMiner         = 8
	// Worker states and accounting (see WorkerStatus.State).
	DefaultWorkerIdleAfter        = 5 * time.Minute
	DefaultWorkerDegradedFraction = 0.5
	DefaultWorkerRejectRate       = 0.05
	DefaultWorkerRollingWindow    = 10 * time.Minute
	DefaultStateInterval          = 30 * time.Second
	DefaultMetricsMaxWorkers      = 1000
)

// Identity says under which name shares go upstream.
type Identity uint8

// The identity modes.
const (
	// IdentityPool submits every share under the configured pool account (default).
	IdentityPool Identity = iota
	// IdentityWorker authorizes each miner's worker name upstream and submits under it.
	IdentityWorker
	// IdentityPassthrough gives each miner its own upstream session under its name.
	IdentityPassthrough
)

// ParseIdentity maps "pool", "worker" or "passthrough" to an Identity.
func ParseIdentity(s string) (Identity, error) {
	switch s {
	case "", "pool":
		return IdentityPool, nil
	case "worker":
		return IdentityWorker, nil
	case "passthrough":
		return IdentityPassthrough, nil
	}
	return 0, fmt.Errorf("identity %q: want pool, worker or passthrough", s)
}

// String returns the name ParseIdentity takes.
func (i Identity) String() string {
	switch i {
	case IdentityWorker:
		return "worker"
	case IdentityPassthrough:
		return "passthrough"
	}
	return "pool"
}

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Listen is the miner (stratum) address. Default DefaultListen.
	Listen string
	// Upstreams are the pools in failover order; at least one.
	Upstreams []PoolURL
	// Identity is how shares are attributed upstream. Default IdentityPool.
	Identity Identity

	// MinersPerUpstream is how many miners share one upstream session.
	MinersPerUpstream int
	// PrefixSize is the per-miner extranonce prefix, in bytes (1..4).
	PrefixSize int

	// MaxLineSize bounds one line from a miner, in bytes.
	MaxLineSize int
	// ReadIdleTimeout closes a miner silent for this long.
	ReadIdleTimeout time.Duration
	// WriteTimeout closes a miner whose writes stall this long (slow consumer).
	WriteTimeout time.Duration
	// MaxPendingBytes closes a miner with more unsent bytes than this (slow consumer).
	MaxPendingBytes int
	// MaxConnections bounds miner connections in total.
	MaxConnections int
	// MaxConnectionsPerIP bounds miner connections per source address; 0 = no limit.
	MaxConnectionsPerIP int
	// ProxyProtocolFrom are the networks (load balancers) whose connections to Listen
	// must start with a PROXY protocol header, v1 or v2; its source address is then
	// the miner's (logs, API, accounting, MaxConnectionsPerIP). A header from any
	// other address is refused. Empty (default): no PROXY protocol.
	ProxyProtocolFrom []netip.Prefix
	// ProxyHeaderTimeout is how long a connection from ProxyProtocolFrom has to send
	// its header. Default DefaultProxyHeaderTimeout.
	ProxyHeaderTimeout time.Duration
	// AllowWorkers, when not empty, is the only worker names (or account prefixes
	// before the first dot) allowed to authorize.
	AllowWorkers []string

	// JobRefresh resends work to miners this often when the pool is quiet (firmware
	// stops hashing after 120 s without a job).
	JobRefresh time.Duration
	// VardiffShareInterval is the time between shares vardiff aims at, per miner.
	VardiffShareInterval time.Duration
	// VardiffRetarget is how often vardiff may change a miner's difficulty.
	VardiffRetarget time.Duration
	// MinDifficulty and MaxDifficulty bound miner difficulty (suggestions too);
	// MaxDifficulty 0 means the upstream difficulty is the only ceiling.
	MinDifficulty, MaxDifficulty float64
	// StartDifficulty is a new miner's difficulty before vardiff or a suggestion.
	StartDifficulty float64
	// PowerOfTwoDifficulty rounds miner difficulty down to 2^k for a whole k, for
	// firmware that cannot parse fractions: below 1 it is raised to 1 whenever the
	// pool's difficulty and MaxDifficulty allow, so such firmware sees integers.
	PowerOfTwoDifficulty bool
	// VersionMask is the version-rolling mask the proxy asks pools for.
	VersionMask uint32
	// JobsPerMiner is how many recent jobs each miner may submit on.
	JobsPerMiner int

	// DialTimeout bounds connecting and handshaking with a pool.
	DialTimeout time.Duration
	// JobTimeout marks a pool unhealthy when no job arrives within it.
	JobTimeout time.Duration
	// SubmitTimeout marks a pool unhealthy when a submit is unanswered this long.
	SubmitTimeout time.Duration
	// BackoffMin and BackoffMax bound reconnect back-off (with jitter).
	BackoffMin, BackoffMax time.Duration
	// FailbackAfter is how long a better pool must stay healthy before slots return.
	FailbackAfter time.Duration
	// ResumeWindow is how long shares are buffered while an upstream reconnects.
	ResumeWindow time.Duration
	// MaxBufferedShares bounds shares buffered during an upstream outage per slot.
	MaxBufferedShares int
	// SubscribeWait bounds how long a miner's subscribe waits for an upstream.
	SubscribeWait time.Duration
	// FakeJobs keeps miners hashing unpaid work while a slot has no pool (after
	// ResumeWindow), so firmware does not stop or switch pools: the last real job
	// resent every JobRefresh under a new id. Its shares are checked and counted
	// (fake_shares_total), never forwarded. Off by default.
	FakeJobs bool

	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration
	// ReconnectOnShutdown, when set, is sent to miners in client.reconnect at shutdown.
	ReconnectOnShutdown string
	// ReconnectJitter spreads those reconnects over this window.
	ReconnectJitter time.Duration

	// HTTP is the status, metrics and API address. Default DefaultHTTP; "off" disables.
	HTTP string
	// Version is reported to miners by client.get_version replies and in logs.
	Version string

	// WorkerIdleAfter makes a connected worker "idle" when it has had no accepted
	// share for this long. Default DefaultWorkerIdleAfter.
	WorkerIdleAfter time.Duration
	// WorkerDegradedFraction makes a worker "degraded" when its 1-hour hashrate is
	// below this fraction of its 24-hour one (after 2 hours of history). Default
	// DefaultWorkerDegradedFraction.
	WorkerDegradedFraction float64
	// WorkerRejectRate makes a worker "rejected" when more than this fraction of
	// its upstream answers of the last hour are rejects (of at least 20). Default
	// DefaultWorkerRejectRate.
	WorkerRejectRate float64
	// WorkerRollingWindow makes a worker that negotiated version rolling
	// "not_rolling" when none of its shares in this window had version bits set.
	// Default DefaultWorkerRollingWindow.
	WorkerRollingWindow time.Duration
	// StateDir, when set, is where the worker counters are kept across restarts;
	// "" keeps nothing.
	StateDir string
	// StateInterval is how often the counters are saved to StateDir (and at
	// shutdown). Default DefaultStateInterval.
	StateInterval time.Duration
	// MetricsPerWorker exports per-worker series on /metrics, for at most
	// MetricsMaxWorkers workers (default DefaultMetricsMaxWorkers).
	MetricsPerWorker  bool
	MetricsMaxWorkers int
	// Curtail configures flexible load: power models, exempt workers, schedule and
	// price signals (curtail.go). The zero value allows API curtailment only.
	Curtail CurtailConfig
	// AdminToken, when set, is the bearer token mutating API calls (POST and
	// DELETE /api/v1/curtailment) must carry; they answer 401 without it.
	AdminToken string
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (c *Config) listen() string { return orDefault(c.Listen, DefaultListen) }
func (c *Config) minersPerUpstream() int {
	if c.Identity == IdentityPassthrough {
		return 1 // passthrough: one upstream session per miner, under its own name
	}
	return orDefault(c.MinersPerUpstream, DefaultMinersPerUpstream)
}
func (c *Config) prefixSize() int  { return orDefault(c.PrefixSize, DefaultPrefixSize) }
func (c *Config) maxLineSize() int { return orDefault(c.MaxLineSize, DefaultMaxLineSize) }
func (c *Config) readIdleTimeout() time.Duration {
	return orDefault(c.ReadIdleTimeout, DefaultReadIdleTimeout)
}
func (c *Config) writeTimeout() time.Duration { return orDefault(c.WriteTimeout, DefaultWriteTimeout) }
func (c *Config) maxPendingBytes() int        { return orDefault(c.MaxPendingBytes, DefaultMaxPendingBytes) }
func (c *Config) maxConnections() int         { return orDefault(c.MaxConnections, DefaultMaxConnections) }
func (c *Config) proxyHeaderTimeout() time.Duration {
	return orDefault(c.ProxyHeaderTimeout, DefaultProxyHeaderTimeout)
}
func (c *Config) jobRefresh() time.Duration { return orDefault(c.JobRefresh, DefaultJobRefresh) }
func (c *Config) vardiffInterval() time.Duration {
	return orDefault(c.VardiffShareInterval, DefaultVardiffShareInterval)
}
func (c *Config) vardiffRetarget() time.Duration {
	return orDefault(c.VardiffRetarget, DefaultVardiffRetarget)
}
func (c *Config) minDifficulty() float64 { return orDefault(c.MinDifficulty, DefaultMinDifficulty) }
func (c *Config) startDifficulty() float64 {
	return orDefault(c.StartDifficulty, DefaultStartDifficulty)
}
func (c *Config) versionMask() uint32        { return orDefault(c.VersionMask, DefaultVersionMask) }
func (c *Config) jobsPerMiner() int          { return orDefault(c.JobsPerMiner, DefaultJobsPerMiner) }
func (c *Config) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }
func (c *Config) jobTimeout() time.Duration  { return orDefault(c.JobTimeout, DefaultJobTimeout) }
func (c *Config) submitTimeout() time.Duration {
	return orDefault(c.SubmitTimeout, DefaultSubmitTimeout)
}
func (c *Config) backoffMin() time.Duration { return orDefault(c.BackoffMin, DefaultBackoffMin) }
func (c *Config) backoffMax() time.Duration { return orDefault(c.BackoffMax, DefaultBackoffMax) }
func (c *Config) failbackAfter() time.Duration {
	return orDefault(c.FailbackAfter, DefaultFailbackAfter)
}
func (c *Config) resumeWindow() time.Duration { return orDefault(c.ResumeWindow, DefaultResumeWindow) }
func (c *Config) maxBufferedShares() int {
	return orDefault(c.MaxBufferedShares, DefaultMaxBufferedShares)
}
func (c *Config) subscribeWait() time.Duration {
	return orDefault(c.SubscribeWait, DefaultSubscribeWait)
}
func (c *Config) shutdownTimeout() time.Duration {
	return orDefault(c.ShutdownTimeout, DefaultShutdownTimeout)
}
func (c *Config) httpAddr() string { return orDefault(c.HTTP, DefaultHTTP) }
func (c *Config) workerIdleAfter() time.Duration {
	return orDefault(c.WorkerIdleAfter, DefaultWorkerIdleAfter)
}
func (c *Config) workerDegradedFraction() float64 {
	return orDefault(c.WorkerDegradedFraction, DefaultWorkerDegradedFraction)
}
func (c *Config) workerRejectRate() float64 {
	return orDefault(c.WorkerRejectRate, DefaultWorkerRejectRate)
}
func (c *Config) workerRollingWindow() time.Duration {
	return orDefault(c.WorkerRollingWindow, DefaultWorkerRollingWindow)
}
func (c *Config) stateInterval() time.Duration {
	return orDefault(c.StateInterval, DefaultStateInterval)
}

// statePolicy returns the bounds of the worker states.
func (c *Config) statePolicy() statePolicy {
	return statePolicy{
		idleAfter: c.workerIdleAfter(), degradedFraction: c.workerDegradedFraction(),
		rejectRate: c.workerRejectRate(), rollingWindow: c.workerRollingWindow(),
	}
}

// Validate reports the first invalid setting, naming it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if len(c.Upstreams) == 0 {
		bad("upstream", "at least one pool is required (stratum+tcp://USER[:PASS]@HOST:PORT)")
	}
	if p := c.prefixSize(); p < 1 || p > 4 {
		bad("prefix-size", "%d is outside 1..4", p)
	}
	if c.MinersPerUpstream < 0 {
		bad("miners-per-upstream", "%d is negative", c.MinersPerUpstream)
	}
	if n := c.maxLineSize(); n < 512 || n > 1<<20 {
		bad("max-line-size", "%d is outside 512..1048576", n)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read-idle-timeout", c.ReadIdleTimeout}, {"write-timeout", c.WriteTimeout},
		{"job-refresh", c.JobRefresh}, {"vardiff-interval", c.VardiffShareInterval},
		{"vardiff-retarget", c.VardiffRetarget}, {"dial-timeout", c.DialTimeout},
		{"job-timeout", c.JobTimeout}, {"submit-timeout", c.SubmitTimeout},
		{"backoff-min", c.BackoffMin}, {"backoff-max", c.BackoffMax},
		{"failback-after", c.FailbackAfter}, {"resume-window", c.ResumeWindow},
		{"subscribe-wait", c.SubscribeWait}, {"shutdown-timeout", c.ShutdownTimeout},
		{"reconnect-jitter", c.ReconnectJitter},
		{"worker-idle-after", c.WorkerIdleAfter}, {"worker-rolling-window", c.WorkerRollingWindow},
		{"state-interval", c.StateInterval}, {"proxy-header-timeout", c.ProxyHeaderTimeout},
	} {
		if d.v < 0 {
			bad(d.name, "%v is negative", d.v)
		}
	}
	if c.jobRefresh() >= 120*time.Second {
		bad("job-refresh", "%v: miners stop hashing after 120s without a job", c.jobRefresh())
	}
	if c.MinDifficulty < 0 || c.MaxDifficulty < 0 || c.StartDifficulty < 0 {
		bad("difficulty", "difficulties must not be negative")
	}
	if c.MaxDifficulty > 0 && c.MaxDifficulty < c.minDifficulty() {
		bad("max-difficulty", "%v is below min-difficulty %v", c.MaxDifficulty, c.minDifficulty())
	}
	if c.backoffMax() < c.backoffMin() {
		bad("backoff-max", "%v is below backoff-min %v", c.backoffMax(), c.backoffMin())
	}
	if c.MaxPendingBytes < 0 || c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 || c.MaxBufferedShares < 0 {
		bad("limits", "connection and buffer limits must not be negative")
	}
	if f := c.WorkerDegradedFraction; f < 0 || f > 1 {
		bad("worker-degraded-fraction", "%v is outside 0..1", f)
	}
	if f := c.WorkerRejectRate; f < 0 || f > 1 {
		bad("worker-reject-rate", "%v is outside 0..1", f)
	}
	for _, p := range c.ProxyProtocolFrom {
		if !p.IsValid() {
			bad("proxy-protocol-from", "%v is not a network", p)
		}
	}
	if c.MetricsMaxWorkers < 0 {
		bad("metrics-max-workers", "%d is negative", c.MetricsMaxWorkers)
	}
	return errors.Join(errs...)
}
