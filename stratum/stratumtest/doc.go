// Package stratumtest provides a simulated Stratum V1 pool and simulated miners that
// really hash, for tests, load tools and demos, in the spirit of net/http/httptest.
// Everything listens and dials on loopback (127.0.0.1) unless told otherwise.
//
// # Pool
//
// NewPool starts a pool on 127.0.0.1:0 that speaks the dialect real pools speak:
// mining.configure (BIP 310 version rolling), mining.subscribe with session resume,
// mining.authorize, mining.extranonce.subscribe, mining.suggest_difficulty, and
// mining.submit checked byte-exactly by stratum.JobWindow and stratum.Checker, at the
// difficulty that was in force when each job was sent. After a subscribe it sends
// set_difficulty and a clean notify at once, before the authorize reply, as ckpool
// does. Jobs are synthetic (random prevhash, a realistic coinbase, a merkle branch
// over random txids) or the caller's own, such as a real block's job, with a forced
// extranonce1 so that a recorded share reproduces the block.
//
// Faults are methods a test calls at any time: DropConnections, Stall and Resume,
// RejectNext and RejectFraction (valid shares answered with a reject, in one of the
// three forms pools use), ForgetJobs (a restarted backend: shares on every job sent
// get 21) and ReuseJobIDs (new jobs under the previous job's id, new content),
// SetExtranonce, SetVersionMask, SetDifficulty, Reconnect, NewBlock and SendJob.
// Stats returns a snapshot of what the pool saw, including a bounded log of the
// submits it received (so a test can assert exactly what arrived) and the bytes
// read and written.
//
// RunMiners and WaitFor are the helpers tests need around them: miners that stop
// when the test ends, and a bounded wait for a condition.
//
// Each connection has one reader goroutine that owns its parse state. Everything a
// session writes, replies and notifications alike, goes out under the session's
// mutex, which also guards its job window; broadcasts are serialized by the pool so
// that every session sees jobs in the same order. Lock order: Pool.ctl, then Pool.mu
// or a session's mu; a session's mu, then Pool.mu; never Pool.mu then a session's.
//
// # Miner
//
// NewMiner returns a simulated ASIC; Run connects and mines until its context is
// done. It builds each coinbase from the job and its extranonces, folds the merkle
// branch, writes the header with stratum.Header and searches nonces with double
// SHA-256 at a configured hash rate, submitting every hash that meets its share
// target. It rolls version bits inside the granted mask and ntime inside the job's
// window, applies set_difficulty and set_extranonce from the next notify as firmware
// does, set_version_mask at once, follows client.reconnect, and answers
// client.get_version and mining.ping.
//
// Nothing here uses encoding/json on the protocol path: lines are decoded with
// stratum.Decoder and written with the stratum package's Append encoders.
package stratumtest
