// Package proxy is HashRelay's daemon core: it holds miners' connections, checks every
// share, and forwards work to upstream pools over a few connections.
//
// # Shape
//
//	miners ──► Server ──► downstream sessions ──► slots ──► upstream connections ──► pools
//
// A downstream session is one miner's connection. One reader goroutine owns its parse
// state and its share checks; everything it sends (replies, jobs, difficulty) is
// appended to a bounded outbound buffer that a shared flusher writes with a deadline.
// A miner whose pending bytes pass the limit, or whose write deadline passes, is a
// slow consumer and is closed with that reason. Every close records one CloseReason.
//
// A slot is the unit of aggregation: up to Config.MinersPerUpstream miners sharing one
// upstream session. The slot owns the miners' extranonce prefixes and hands each miner
// a folded extranonce: the miner's extranonce1 is its prefix alone, and the upstream
// extranonce1 is folded into the coinb1 of every job the slot relays. When the slot's
// upstream changes (failover, fail-back, set_extranonce), only coinb1 changes, and a
// new job with clean_jobs tells the miners: no miner reconnects.
//
// An upstream connection speaks the client side to one pool: configure (version
// rolling), subscribe (resuming its previous session when it can), authorize, jobs,
// difficulty, version mask, extranonce, reconnect, and submits with the proxy's own
// numeric ids matched to their answers.
//
// # Shares
//
// Every share is checked locally (stratum.JobWindow at the target in force when its
// job was sent) and the miner is answered from that verdict at once. A share that also
// meets the upstream target is forwarded; block candidates go first. The pool's answer
// is counted per worker and reason, never hidden.
package proxy
