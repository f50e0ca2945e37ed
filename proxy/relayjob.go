package proxy

import (
	"strconv"

	"github.com/hashrelay/hashrelay/stratum"
)

// relayJob is an upstream job as the slot's miners see it: the upstream extranonce1
// folded into coinb1, any extranonce2 the miners don't use padded with zeros at the
// front of coinb2, and a job id of the slot's own (so ids from two pools never
// collide across a failover).
type relayJob struct {
	job *stratum.Job // downstream form, shared by every miner of the slot
	up  *upstream    // the connection the job came from
	// sess is the pool session the job belongs to: up, or the first connection of
	// the session up resumed (same extranonce1). A share on the job can be submitted
	// on any live connection of that session, and on no other.
	sess *upstream
	// prefixSize is the miner prefix size of the slot's layout when the job was
	// made (it changes only when the slot re-subscribes its miners).
	prefixSize int
	// upstreamID is the pool's job id, used in forwarded submits.
	upstreamID string
	// upTarget is the pool's share target in force when the pool sent the job.
	upTarget     stratum.Target
	upDifficulty float64
	// pad is the number of zero bytes after the miner's extranonce2.
	pad int
	// notify is the serialized mining.notify, built once for every miner.
	notify []byte
	// fake marks unpaid work handed out while no pool is reachable (Config.FakeJobs):
	// its shares are checked and counted, never forwarded.
	fake bool
}

// newRelayJob folds upstream job j for miners with extranonce2 size minerEn2 behind a
// prefix of prefixSize bytes. notifyClean is the clean_jobs flag miners see; the job
// voids older ones in the proxy's windows only when voids is set (the pool said
// clean on the same connection): after a switch of upstream, miners drop old work at
// once, yet a share already found on it is still checked and forwarded to the
// connection it came from (or counted lost).
func newRelayJob(j *stratum.Job, up *upstream, seq uint64, en1 []byte, en2Size, prefixSize, minerEn2 int, diff float64, notifyClean, voids bool) (*relayJob, error) {
	pad := en2Size - prefixSize - minerEn2
	d := *j
	d.ID = strconv.FormatUint(seq, 16)
	d.Clean = notifyClean
	d.Coinb1 = append(append(make([]byte, 0, len(j.Coinb1)+len(en1)), j.Coinb1...), en1...)
	if pad > 0 {
		d.Coinb2 = append(make([]byte, pad, pad+len(j.Coinb2)), j.Coinb2...)
	}
	wire, err := stratum.NewJob(d)
	if err != nil {
		return nil, err
	}
	job := wire
	if notifyClean && !voids {
		w := *wire
		w.Clean = false
		job = &w
	}
	t, err := stratum.TargetFromDifficulty(diff)
	if err != nil {
		return nil, err
	}
	return &relayJob{
		job:          job,
		up:           up,
		sess:         up,
		prefixSize:   prefixSize,
		upstreamID:   j.ID,
		upTarget:     t,
		upDifficulty: diff,
		pad:          pad,
		notify:       stratum.AppendNotify(nil, wire),
	}, nil
}

// refreshed returns the same work under a new id with a later ntime, so a miner keeps
// hashing fresh headers when the pool is quiet and never repeats one.
func (r *relayJob) refreshed(seq uint64, ntime uint32) *relayJob {
	d := *r.job
	d.ID = strconv.FormatUint(seq, 16)
	d.Clean = false
	if ntime > d.NTime && ntime-r.job.NTime < stratum.MaxNTimeRoll/2 {
		d.NTime = ntime
	}
	n := *r
	n.job = &d
	n.notify = stratum.AppendNotify(nil, &d)
	return &n
}

// appendUpstreamExtranonce2 appends the hex extranonce2 the pool must see for a share
// by a miner with the given prefix: prefix || miner extranonce2 || zero padding.
func (r *relayJob) appendUpstreamExtranonce2(dst, prefix, minerHex []byte) []byte {
	dst = stratum.Layout{}.AppendUpstreamExtranonce2(dst, prefix, minerHex)
	for i := 0; i < r.pad; i++ {
		dst = append(dst, '0', '0')
	}
	return dst
}
