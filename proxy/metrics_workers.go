package proxy

import (
	"github.com/hashrelay/hashrelay/metrics"
	"github.com/hashrelay/hashrelay/stratum"
)

// workerSamples is the metrics collector's source: every worker's account as a
// scrape sees it (states included), read at scrape time only, so per-worker and
// fleet series cost nothing on the share path.
func (s *Server) workerSamples() []metrics.WorkerSample {
	list := s.accounts.list()
	var energy map[string]EnergyStatus
	if s.curtail != nil {
		energy = s.curtail.workerEnergies()
	}
	out := make([]metrics.WorkerSample, len(list))
	for i, w := range list {
		var rejected, upRejected uint64
		for v, n := range w.Rejected {
			if v != stratum.VerdictUnknownJob.String() && v != stratum.VerdictDuplicate.String() {
				rejected += n
			}
		}
		for _, n := range w.UpstreamRejected {
			upRejected += n
		}
		out[i] = metrics.WorkerSample{
			Name: w.Name, State: w.State,
			Hashrate1m: w.Hashrate1m, Hashrate5m: w.Hashrate5m, Hashrate1h: w.Hashrate1h, Hashrate24h: w.Hashrate24h,
			Accepted: w.Accepted, Rejected: rejected, Stale: w.Stale, Duplicate: w.Duplicate,
			Forwarded: w.Forwarded, UpstreamAccepted: w.UpstreamAccepted, UpstreamRejected: upRejected,
			BlockCandidates: w.BlockCandidates, AcceptedWork: w.AcceptedWork, LastShare: w.LastShare,
			Connections: w.Connections, Difficulty: w.Difficulty,
		}
		if e, ok := energy[w.Name]; ok {
			out[i].HasEnergy, out[i].PowerKW, out[i].EnergyKWh = true, e.PowerKW, e.EnergyKWh
		}
	}
	return out
}
